/// A CUDA stream: work on one stream runs in order. `CUDAStream.null` is the legacy
/// default stream.
public final class CUDAStream: @unchecked Sendable {
  public let device: CUDADevice
  let handle: CUstream?

  /// A new stream; `nonBlocking` streams do not synchronise with the default stream.
  public init(device: CUDADevice, nonBlocking: Bool = true) throws(CUDAError) {
    self.device = device
    try device.makeCurrent()
    var s: CUstream? = nil
    try device.api.check(device.api.cuStreamCreate(&s, nonBlocking ? 1 : 0), "cuStreamCreate")
    handle = s
  }

  private init(defaultOf device: CUDADevice) {
    self.device = device
    handle = nil
  }

  /// The default (null) stream of `device`.
  public static func defaultStream(of device: CUDADevice) -> CUDAStream { CUDAStream(defaultOf: device) }

  /// The raw `CUstream` (for cuBLAS's `cublasSetStream`).
  public var rawHandle: OpaquePointer? { handle }

  deinit {
    if let handle {
      try? device.makeCurrent()
      _ = device.api.cuStreamDestroy(handle)
    }
  }

  /// Waits until all work queued on the stream has finished.
  public func synchronize() throws(CUDAError) {
    try device.makeCurrent()
    try device.api.check(device.api.cuStreamSynchronize(handle), "cuStreamSynchronize")
  }
}

/// A CUDA event with timing enabled, for measuring GPU time between two points of a stream.
public final class CUDAEvent: @unchecked Sendable {
  public let device: CUDADevice
  let handle: CUevent

  public init(device: CUDADevice) throws(CUDAError) {
    self.device = device
    try device.makeCurrent()
    var e: CUevent? = nil
    try device.api.check(device.api.cuEventCreate(&e, 0), "cuEventCreate")
    guard let e else { throw .invalidRequest("cuEventCreate returned no event") }
    handle = e
  }

  deinit {
    try? device.makeCurrent()
    _ = device.api.cuEventDestroy(handle)
  }

  /// Records the event at the current end of `stream`.
  public func record(on stream: CUDAStream) throws(CUDAError) {
    try device.makeCurrent()
    try device.api.check(device.api.cuEventRecord(handle, stream.handle), "cuEventRecord")
  }

  /// Waits until the work before the event has finished.
  public func synchronize() throws(CUDAError) {
    try device.api.check(device.api.cuEventSynchronize(handle), "cuEventSynchronize")
  }

  /// Milliseconds of GPU time from `start` to this event (both recorded; waits for this one).
  public func elapsedMilliseconds(since start: CUDAEvent) throws(CUDAError) -> Double {
    try synchronize()
    var ms: Float = 0
    try device.api.check(device.api.cuEventElapsedTime(&ms, start.handle, handle), "cuEventElapsedTime")
    return Double(ms)
  }
}
