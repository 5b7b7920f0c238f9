import Synchronization

/// Counts the device memory our buffers hold: current bytes and the high-water mark since
/// the last `resetPeak()`, which is how benchmarks report a pass's peak extra memory.
/// It also samples the driver's free memory after each allocation, so the driver's view
/// (`driverPeakDeltaBytes`, which includes allocator rounding and anything cuBLAS takes)
/// can be set beside ours.
public final class TrackingAllocator: @unchecked Sendable {
  public let device: CUDADevice
  private struct State {
    var current = 0
    var peak = 0
    var freeAtReset = 0
    var minimumFree = Int.max
  }
  private let state = Mutex(State())

  public init(device: CUDADevice) {
    self.device = device
    resetPeak()
  }

  /// Bytes held now by buffers of this allocator.
  public var currentBytes: Int { state.withLock { $0.current } }
  /// The most bytes held at once since `resetPeak()`.
  public var peakBytes: Int { state.withLock { $0.peak } }
  /// How far the driver's free memory fell below its value at `resetPeak()`, in bytes.
  public var driverPeakDeltaBytes: Int {
    state.withLock { $0.minimumFree == Int.max ? 0 : max(0, $0.freeAtReset - $0.minimumFree) }
  }

  /// Starts a new measurement: the peak becomes what is held now.
  public func resetPeak() {
    let free = (try? device.memoryInfo().free) ?? 0
    state.withLock {
      $0.peak = $0.current
      $0.freeAtReset = free
      $0.minimumFree = free
    }
  }

  /// A new buffer of `byteCount` bytes (contents undefined). Throws `.outOfMemory` when
  /// the device cannot satisfy it.
  public func allocate(byteCount: Int) throws(CUDAError) -> DeviceBuffer {
    guard byteCount >= 0 else { throw .invalidRequest("negative allocation size \(byteCount)") }
    let api = device.api
    try device.makeCurrent()
    var address: CUdeviceptr = 0
    let size = max(byteCount, 1)
    let code = api.cuMemAlloc(&address, size)
    if code == CUDAError.driverOutOfMemory {
      throw .outOfMemory(device: device.properties.name, requestedBytes: byteCount)
    }
    try api.check(code, "cuMemAlloc_v2(\(byteCount) bytes)")
    var free = 0
    var total = 0
    let sampled = api.cuMemGetInfo(&free, &total) == 0
    state.withLock {
      $0.current += size
      $0.peak = max($0.peak, $0.current)
      if sampled { $0.minimumFree = min($0.minimumFree, free) }
    }
    return DeviceBuffer(address: address, byteCount: size, allocator: self)
  }

  /// A buffer for `count` elements of `T`.
  public func allocate<T>(_: T.Type, count: Int) throws(CUDAError) -> DeviceBuffer {
    try allocate(byteCount: count * MemoryLayout<T>.stride)
  }

  fileprivate func release(_ buffer: DeviceBuffer) {
    try? device.makeCurrent()
    _ = device.api.cuMemFree(buffer.address)
    state.withLock { $0.current -= buffer.byteCount }
  }
}

/// Device memory owned by one object and freed when it goes away.
public final class DeviceBuffer: @unchecked Sendable {
  /// The device address (`CUdeviceptr`) as kernels and `DeviceTensorRef` take it.
  public let address: UInt64
  public let byteCount: Int
  public let allocator: TrackingAllocator
  var device: CUDADevice { allocator.device }

  fileprivate init(address: UInt64, byteCount: Int, allocator: TrackingAllocator) {
    self.address = address
    self.byteCount = byteCount
    self.allocator = allocator
  }

  deinit { allocator.release(self) }

  /// Copies `bytes` bytes from host memory to `offset` (synchronous).
  public func upload(from host: UnsafeRawPointer, bytes: Int, offset: Int = 0) throws(CUDAError) {
    try checkRange(offset, bytes)
    try device.makeCurrent()
    try device.api.check(device.api.cuMemcpyHtoD(address + UInt64(offset), host, bytes), "cuMemcpyHtoD_v2")
  }

  /// Copies the elements of `array` to the start of the buffer.
  public func upload<T>(_ array: [T]) throws(CUDAError) {
    let bytes = array.count * MemoryLayout<T>.stride
    let result: Result<Void, CUDAError> = array.withUnsafeBytes { raw in
      do throws(CUDAError) {
        try upload(from: raw.baseAddress!, bytes: bytes)
        return .success(())
      } catch { return .failure(error) }
    }
    try result.get()
  }

  /// Copies `bytes` bytes at `offset` into host memory (synchronous: waits for prior work).
  public func download(to host: UnsafeMutableRawPointer, bytes: Int, offset: Int = 0) throws(CUDAError) {
    try checkRange(offset, bytes)
    try device.makeCurrent()
    try device.api.check(device.api.cuMemcpyDtoH(host, address + UInt64(offset), bytes), "cuMemcpyDtoH_v2")
  }

  /// The first `count` elements as an array of `T`.
  public func download<T>(_: T.Type, count: Int) throws(CUDAError) -> [T] {
    let bytes = count * MemoryLayout<T>.stride
    try checkRange(0, bytes)
    var failure: CUDAError?
    let result = [T](unsafeUninitializedCapacity: count) { buffer, initialized in
      do throws(CUDAError) {
        try download(to: UnsafeMutableRawPointer(buffer.baseAddress!), bytes: bytes)
        initialized = count
      } catch {
        failure = error
        initialized = 0
      }
    }
    if let failure { throw failure }
    return result
  }

  /// Copies from another buffer on the same device.
  public func copy(from source: DeviceBuffer, bytes: Int, sourceOffset: Int = 0, offset: Int = 0) throws(CUDAError) {
    try checkRange(offset, bytes)
    try source.checkRange(sourceOffset, bytes)
    try device.makeCurrent()
    try device.api.check(
      device.api.cuMemcpyDtoD(address + UInt64(offset), source.address + UInt64(sourceOffset), bytes),
      "cuMemcpyDtoD_v2")
  }

  /// Sets every byte to `value`.
  public func fill(byte value: UInt8) throws(CUDAError) {
    try device.makeCurrent()
    try device.api.check(device.api.cuMemsetD8(address, value, byteCount), "cuMemsetD8_v2")
  }

  /// Sets the first `count` 16-bit words to `value` (NaN poisoning of fp16/bf16 tensors).
  public func fill(uint16 value: UInt16, count: Int) throws(CUDAError) {
    try checkRange(0, count * 2)
    try device.makeCurrent()
    try device.api.check(device.api.cuMemsetD16(address, value, count), "cuMemsetD16_v2")
  }

  /// Sets the first `count` 32-bit words to `value` (NaN poisoning of float32 tensors).
  public func fill(uint32 value: UInt32, count: Int) throws(CUDAError) {
    try checkRange(0, count * 4)
    try device.makeCurrent()
    try device.api.check(device.api.cuMemsetD32(address, value, count), "cuMemsetD32_v2")
  }

  private func checkRange(_ offset: Int, _ bytes: Int) throws(CUDAError) {
    guard offset >= 0, bytes >= 0, offset + bytes <= byteCount else {
      throw .invalidRequest("copy of \(bytes) bytes at offset \(offset) outside a buffer of \(byteCount) bytes")
    }
  }
}
