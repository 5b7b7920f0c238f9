import FlashAttention

/// One 64-byte-aligned allocation through `HostMemory`, carved into float buffers.
///
/// Each thread ("lane") owns one for the whole pass, so the hot loops never allocate and the
/// benchmark's peak-memory figure counts every tile.
final class Scratch: @unchecked Sendable {
  private let base: UnsafeMutablePointer<Float>
  private let capacity: Int
  private var used = 0

  /// `floats` is the sum of the counts later requested, each rounded up to 16 floats.
  init(floats: Int) {
    capacity = max(16, Scratch.rounded(floats))
    base = HostMemory.allocate(Float.self, count: capacity)
  }

  /// A buffer of `count` floats starting on a 64-byte boundary (uninitialised).
  func take(_ count: Int) -> UnsafeMutablePointer<Float> {
    let rounded = Scratch.rounded(count)
    precondition(used + rounded <= capacity, "Scratch: internal size computation is wrong")
    defer { used += rounded }
    return base + used
  }

  /// Makes the whole allocation available again (buffers taken before become invalid).
  func reset() { used = 0 }

  /// `count` rounded up to whole cache lines of floats.
  static func rounded(_ count: Int) -> Int { (count + 15) / 16 * 16 }

  deinit { HostMemory.deallocate(base, count: capacity) }
}
