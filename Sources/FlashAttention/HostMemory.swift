import Synchronization

/// Accounting of the host memory our tensors and kernel scratch buffers hold, so that a
/// benchmark can report the peak extra bytes of a CPU run the way a GPU run reports its
/// tracking allocator's high-water mark.
public enum HostMemory {
  private static let state = Mutex<(current: Int, peak: Int)>((0, 0))

  /// 64-byte alignment: a cache line, and what AVX-512 loads want (half speed at 16 seen here).
  public static let alignment = 64

  /// Uninitialised, 64-byte-aligned memory for `count` elements, counted until `deallocate`.
  public static func allocate<T>(_: T.Type, count: Int) -> UnsafeMutablePointer<T> {
    let bytes = max(1, count * MemoryLayout<T>.stride)
    let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: alignment)
    record(bytes)
    return raw.bindMemory(to: T.self, capacity: count)
  }

  public static func deallocate<T>(_ pointer: UnsafeMutablePointer<T>, count: Int) {
    record(-max(1, count * MemoryLayout<T>.stride))
    UnsafeMutableRawPointer(pointer).deallocate()
  }

  private static func record(_ delta: Int) {
    state.withLock {
      $0.current += delta
      $0.peak = max($0.peak, $0.current)
    }
  }

  /// Bytes held now.
  public static var currentBytes: Int { state.withLock { $0.current } }
  /// The high-water mark since the last `resetPeak()`.
  public static var peakBytes: Int { state.withLock { $0.peak } }
  /// Starts a new measurement: the peak becomes what is held now.
  public static func resetPeak() { state.withLock { $0.peak = $0.current } }
}

/// SplitMix64: a small, fast, seedable generator so every random input is reproducible.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
  private var state: UInt64
  public init(seed: UInt64) { state = seed }
  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
