import FlashAttention

/// What this machine offers the CUDA backend, for `flash-attn info`: each part either
/// found (with its version and the file loaded) or the reason it was not.
public struct CUDAEnvironment: Sendable {
  public struct Library: Sendable {
    public var version: String
    public var path: String
  }
  public var driver: Result<Library, CUDAError>
  public var devices: Result<[DeviceProperties], CUDAError>
  public var nvrtc: Result<Library, CUDAError>
  /// Archs NVRTC can compile for (`sm_80`, …), empty when unknown.
  public var nvrtcArchs: [Int]
  public var cublas: Result<Library, CUDAError>
  public var cacheDirectory: String
  public var cacheFiles: Int
  public var cacheBytes: Int

  /// Probes the driver, the devices, NVRTC, cuBLAS and the kernel cache; never throws.
  public static func probe() -> CUDAEnvironment {
    let driver = Result { () throws(CUDAError) in try CUDADriver.shared() }
    let devices = driver.flatMap { d in
      Result { () throws(CUDAError) in
        var list: [DeviceProperties] = []
        for i in 0..<d.deviceCount { list.append(try d.device(i).properties) }
        return list
      }
    }
    let nvrtc = Result { () throws(CUDAError) in try NVRTC.shared() }
    let cublas = Result { () throws(CUDAError) in try CUBLASLibrary.shared() }
    let cache = KernelCache.shared
    let usage = cache.diskUsage()
    return CUDAEnvironment(
      driver: driver.map { Library(version: $0.versionString, path: $0.libraryPath) }, devices: devices,
      nvrtc: nvrtc.map { Library(version: $0.versionString, path: $0.path) },
      nvrtcArchs: (try? nvrtc.get().supportedArchs) ?? [],
      cublas: cublas.map { Library(version: $0.version, path: $0.path) },
      cacheDirectory: cache.directory ?? "(memory only)", cacheFiles: usage.files, cacheBytes: usage.bytes)
  }

  /// Whether `--device cuda` can run: a driver, at least one sm_80+ GPU and NVRTC.
  public var usable: Bool {
    guard case let .success(list) = devices, list.contains(where: { $0.arch != nil }),
      case .success = nvrtc
    else { return false }
    return true
  }
}
