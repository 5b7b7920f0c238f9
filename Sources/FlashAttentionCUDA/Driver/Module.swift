import Synchronization

/// A module loaded from a CUBIN image; unloaded when it goes away (after its functions).
public final class CUDAModule: @unchecked Sendable {
  public let device: CUDADevice
  let handle: CUmodule
  private let functions = Mutex<[String: CUDAFunction]>([:])

  /// Loads `image` (a CUBIN produced by NVRTC for this device's arch).
  public init(device: CUDADevice, image: [UInt8]) throws(CUDAError) {
    self.device = device
    try device.makeCurrent()
    var m: CUmodule? = nil
    let code = image.withUnsafeBytes { device.api.cuModuleLoadData(&m, $0.baseAddress!) }
    try device.api.check(code, "cuModuleLoadData")
    guard let m else { throw .invalidRequest("cuModuleLoadData returned no module") }
    handle = m
  }

  deinit {
    try? device.makeCurrent()
    _ = device.api.cuModuleUnload(handle)
  }

  /// The `extern "C" __global__` function `name` (looked up once, then cached).
  public func function(_ name: String) throws(CUDAError) -> CUDAFunction {
    if let f = functions.withLock({ $0[name] }) { return f }
    try device.makeCurrent()
    var f: CUfunction? = nil
    try device.api.check(device.api.cuModuleGetFunction(&f, handle, name), "cuModuleGetFunction(\(name))")
    guard let f else { throw .invalidRequest("cuModuleGetFunction(\(name)) returned nothing") }
    let function = CUDAFunction(module: self, name: name, handle: f)
    functions.withLock { $0[name] = function }
    return function
  }
}

/// One kernel of a loaded module.
public final class CUDAFunction: @unchecked Sendable {
  public let module: CUDAModule
  public let name: String
  let handle: CUfunction
  private let dynamicSharedLimit = Mutex(48 * 1024)
  var device: CUDADevice { module.device }

  init(module: CUDAModule, name: String, handle: CUfunction) {
    self.module = module
    self.name = name
    self.handle = handle
  }

  /// Function attributes from the driver (`CU_FUNC_ATTRIBUTE_*`).
  public enum Attribute: Int32 {
    case maxThreadsPerBlock = 0, staticSharedBytes = 1, constBytes = 2, localBytes = 3, registers = 4
    case ptxVersion = 5, binaryVersion = 6, maxDynamicSharedBytes = 8
  }

  public func attribute(_ a: Attribute) throws(CUDAError) -> Int {
    var v: Int32 = 0
    try device.api.check(device.api.cuFuncGetAttribute(&v, a.rawValue, handle), "cuFuncGetAttribute(\(a))")
    return Int(v)
  }

  /// Raises the function's dynamic shared memory limit (needed above 48 KiB).
  public func setMaxDynamicSharedMemory(_ bytes: Int) throws(CUDAError) {
    let optin = device.properties.sharedMemoryPerBlockOptin
    guard bytes <= optin else {
      throw .invalidRequest(
        "\(name) needs \(bytes) bytes of dynamic shared memory; \(device.properties.name) allows \(optin)")
    }
    try device.makeCurrent()
    try device.api.check(device.api.cuFuncSetAttribute(handle, 8, Int32(bytes)), "cuFuncSetAttribute(\(name), max dynamic smem \(bytes))")
    dynamicSharedLimit.withLock { $0 = bytes }
  }

  /// Launches with ONE by-value argument whose bytes are `parameterBlock` (a C struct laid
  /// out by C rules, like the generated kernels' `struct Params`). Raises the dynamic
  /// shared memory limit first when `dynamicSharedBytes` needs it.
  public func launch(
    grid: Dim3, block: Dim3, dynamicSharedBytes: Int = 0, stream: CUDAStream? = nil,
    parameterBlock: [UInt8]
  ) throws(CUDAError) {
    guard grid.x > 0, grid.y > 0, grid.z > 0, block.x > 0, block.y > 0, block.z > 0,
      grid.y < 65536, grid.z < 65536
    else {
      throw .invalidRequest("\(name): invalid launch grid \(grid) block \(block)")
    }
    if dynamicSharedBytes > dynamicSharedLimit.withLock({ $0 }) {
      try setMaxDynamicSharedMemory(dynamicSharedBytes)
    }
    try device.makeCurrent()
    // The driver reads the argument through a pointer to its bytes; give it 16-byte
    // alignment, the most any kernel parameter struct needs.
    let bytes = max(parameterBlock.count, 1)
    let storage = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 16)
    defer { storage.deallocate() }
    parameterBlock.withUnsafeBytes { if let base = $0.baseAddress { storage.copyMemory(from: base, byteCount: $0.count) } }
    var argument: UnsafeMutableRawPointer? = storage
    let code = withUnsafeMutablePointer(to: &argument) { arguments in
      device.api.cuLaunchKernel(
        handle, UInt32(grid.x), UInt32(grid.y), UInt32(grid.z), UInt32(block.x), UInt32(block.y),
        UInt32(block.z), UInt32(dynamicSharedBytes), stream?.handle, arguments, nil)
    }
    try device.api.check(code, "cuLaunchKernel(\(name), grid \(grid.x)x\(grid.y)x\(grid.z), block \(block.x)x\(block.y)x\(block.z), smem \(dynamicSharedBytes))")
  }
}
