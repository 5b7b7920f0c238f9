import Synchronization

/// What one device needs to run generated kernels: its allocator, a stream, the kernel
/// cache and the modules loaded from it (each CUBIN loaded once per device).
public final class DeviceRuntime: @unchecked Sendable {
  public let device: CUDADevice
  public let allocator: TrackingAllocator
  public let stream: CUDAStream
  public let cache: KernelCache
  /// The arch kernels are compiled for (`sm_90a` on Hopper).
  public let arch: GPUArch
  /// The Hopper forward's tile counter (`HopperForwardPlanner.tileCounterBytes`): two int32
  /// that its dynamically scheduled kernels claim tiles from — zero here, and zero again at the
  /// end of every such launch — and a hand-over slot per CTA. One per runtime because the
  /// runtime has one stream: its launches never overlap.
  public let tileCounter: DeviceBuffer
  private let modules = Mutex<[String: CUDAModule]>([:])
  private let cublasHandle = Mutex<CUBLASHandle?>(nil)

  public init(device: CUDADevice, cache: KernelCache = .shared) throws(CUDAError) {
    guard let arch = device.properties.arch else {
      throw .noDevice(
        reason: "\(device.properties.name) is sm_\(device.properties.computeCapabilityMajor)\(device.properties.computeCapabilityMinor); the kernels need sm_80 or newer (up to sm_90)")
    }
    self.device = device
    self.arch = arch
    self.cache = cache
    allocator = TrackingAllocator(device: device)
    // A blocking stream: it stays ordered with the legacy default stream, on which the
    // synchronous copies and memsets (`cuMemcpyHtoD`, `cuMemsetD16`) run.
    stream = try CUDAStream(device: device, nonBlocking: false)
    tileCounter = try allocator.allocate(byteCount: HopperForwardPlanner.tileCounterBytes)
    try tileCounter.fill(byte: 0)
  }

  /// The function `entryPoint` of `kernel`, compiled (or taken from the cache) and loaded.
  public func function(_ kernel: GeneratedKernel, entryPoint: String) throws(CUDAError) -> CUDAFunction {
    let compiled = try cache.compile(kernel)
    if let module = modules.withLock({ $0[compiled.key] }) { return try module.function(entryPoint) }
    let module = try CUDAModule(device: device, image: compiled.cubin)
    modules.withLock { $0[compiled.key] = module }
    return try module.function(entryPoint)
  }

  /// A launch whose function is compiled and loaded, ready to queue with no host work
  /// beyond the driver call (hashing a kernel's source for the cache costs more than
  /// launching it, and must stay out of timed runs).
  public struct ResolvedLaunch: @unchecked Sendable {
    public let function: CUDAFunction
    public let launch: KernelLaunch
  }

  /// Compiles (or finds in the cache) and loads the function of every launch.
  public func resolve(_ launches: [KernelLaunch]) throws(CUDAError) -> [ResolvedLaunch] {
    var resolved: [ResolvedLaunch] = []
    for l in launches {
      let f = try function(l.kernel, entryPoint: l.entryPoint)
      if l.dynamicSharedMemoryBytes > 48 * 1024 { try f.setMaxDynamicSharedMemory(l.dynamicSharedMemoryBytes) }
      resolved.append(ResolvedLaunch(function: f, launch: l))
    }
    return resolved
  }

  /// Queues resolved launches on the stream, in order.
  public func run(_ resolved: [ResolvedLaunch]) throws(CUDAError) {
    for r in resolved {
      let l = r.launch
      try r.function.launch(
        grid: l.grid, block: l.block, dynamicSharedBytes: l.dynamicSharedMemoryBytes, stream: stream,
        parameterBlock: l.parameterBlock)
    }
  }

  /// Resolves and queues `launches` on the stream, in order.
  public func run(_ launches: [KernelLaunch]) throws(CUDAError) {
    try run(resolve(launches))
  }

  /// The cuBLAS handle of this device (made on first use; throws when cuBLAS is absent).
  func cublas() throws(CUDAError) -> CUBLASHandle {
    if let h = cublasHandle.withLock({ $0 }) { return h }
    let h = try CUBLASHandle(device: device, stream: stream)
    cublasHandle.withLock { $0 = h }
    return h
  }
}
