/// What the kernels and reports need to know about a GPU.
public struct DeviceProperties: Sendable, Hashable {
  public var name: String
  public var ordinal: Int
  public var computeCapabilityMajor: Int
  public var computeCapabilityMinor: Int
  public var multiprocessorCount: Int
  /// Shared memory one block may use after opting in (`cuFuncSetAttribute`), bytes.
  public var sharedMemoryPerBlockOptin: Int
  public var sharedMemoryPerMultiprocessor: Int
  public var totalMemoryBytes: Int
  public var l2CacheBytes: Int
  public var clockRateKHz: Int
  /// The arch kernels are compiled for (`sm_90a` on Hopper), nil for GPUs older than sm_80.
  public var arch: GPUArch? { GPUArch(computeCapability: computeCapabilityMajor, computeCapabilityMinor) }

  public static func == (a: Self, b: Self) -> Bool { a.ordinal == b.ordinal && a.name == b.name }
  public func hash(into h: inout Hasher) { h.combine(ordinal); h.combine(name) }
}

/// One GPU and its primary context. Every operation makes the context current on the
/// calling thread first, so a device may be used from any thread.
public final class CUDADevice: @unchecked Sendable {
  public let driver: CUDADriver
  public let ordinal: Int
  public let properties: DeviceProperties
  let handle: CUdevice
  let context: CUcontext
  var api: DriverAPI { driver.api }

  init(driver: CUDADriver, ordinal: Int) throws(CUDAError) {
    self.driver = driver
    self.ordinal = ordinal
    let api = driver.api
    var dev: CUdevice = 0
    try api.check(api.cuDeviceGet(&dev, Int32(ordinal)), "cuDeviceGet")
    handle = dev
    var nameBuffer = [CChar](repeating: 0, count: 256)
    try api.check(api.cuDeviceGetName(&nameBuffer, 255, dev), "cuDeviceGetName")
    func attribute(_ a: Int32) throws(CUDAError) -> Int {
      var v: Int32 = 0
      try api.check(api.cuDeviceGetAttribute(&v, a, dev), "cuDeviceGetAttribute(\(a))")
      return Int(v)
    }
    var total = 0
    try api.check(api.cuDeviceTotalMem(&total, dev), "cuDeviceTotalMem_v2")
    let nameBytes = nameBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    properties = DeviceProperties(
      name: String(decoding: nameBytes, as: UTF8.self), ordinal: ordinal,
      computeCapabilityMajor: try attribute(75), computeCapabilityMinor: try attribute(76),
      multiprocessorCount: try attribute(16), sharedMemoryPerBlockOptin: try attribute(97),
      sharedMemoryPerMultiprocessor: try attribute(81), totalMemoryBytes: total,
      l2CacheBytes: try attribute(38), clockRateKHz: try attribute(13))
    var ctx: CUcontext? = nil
    try api.check(api.cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain")
    guard let ctx else { throw .noDevice(reason: "cuDevicePrimaryCtxRetain returned no context") }
    context = ctx
    try api.check(api.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
  }

  deinit {
    _ = api.cuDevicePrimaryCtxRelease(handle)
  }

  /// Makes this device's context current on the calling thread.
  public func makeCurrent() throws(CUDAError) {
    try api.check(api.cuCtxSetCurrent(context), "cuCtxSetCurrent")
  }

  /// Waits for all work on the device.
  public func synchronize() throws(CUDAError) {
    try makeCurrent()
    try api.check(api.cuCtxSynchronize(), "cuCtxSynchronize")
  }

  /// Free and total device memory in bytes (`cuMemGetInfo_v2`).
  public func memoryInfo() throws(CUDAError) -> (free: Int, total: Int) {
    try makeCurrent()
    var free = 0
    var total = 0
    try api.check(api.cuMemGetInfo(&free, &total), "cuMemGetInfo_v2")
    return (free, total)
  }

  /// `"NVIDIA H100 80GB HBM3 (sm_90a)"`.
  public var displayName: String { "\(properties.name) (\(properties.arch?.rawValue ?? "sm_\(properties.computeCapabilityMajor)\(properties.computeCapabilityMinor)"))" }
}
