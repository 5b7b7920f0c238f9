/// The CUDA driver, opened from `libcuda.so.1` (by soname only: the driver must match the
/// kernel module, so no other copy is searched) and initialised once per process.
public final class CUDADriver: @unchecked Sendable {
  let api: DriverAPI
  /// The file that was loaded, e.g. `/usr/lib/x86_64-linux-gnu/libcuda.so.580.65.06`.
  public var libraryPath: String { api.library.path }
  /// `cuDriverGetVersion`, e.g. 13000 for CUDA 13.0.
  public let version: Int
  /// Number of devices the driver sees.
  public let deviceCount: Int

  private init(api: DriverAPI) throws(CUDAError) {
    self.api = api
    try api.check(api.cuInit(0), "cuInit")
    var v: Int32 = 0
    try api.check(api.cuDriverGetVersion(&v), "cuDriverGetVersion")
    version = Int(v)
    var n: Int32 = 0
    try api.check(api.cuDeviceGetCount(&n), "cuDeviceGetCount")
    deviceCount = Int(n)
  }

  /// `13.0` from 13000.
  public var versionString: String { "\(version / 1000).\(version % 1000 / 10)" }

  /// Loads and initialises the driver once; later calls return the same result (the
  /// failure too: a machine without a driver does not grow one while we run).
  public static func shared() throws(CUDAError) -> CUDADriver {
    try loaded.get()
  }

  private static let loaded: Result<CUDADriver, CUDAError> = {
    do throws(CUDAError) {
      let library = try DynamicLibrary.open("libcuda.so.1", probeSymbol: "cuInit")
      return .success(try CUDADriver(api: DriverAPI(library: library)))
    } catch {
      return .failure(error)
    }
  }()

  /// Device `ordinal` with its primary context retained (made current on this thread).
  public func device(_ ordinal: Int = 0) throws(CUDAError) -> CUDADevice {
    guard deviceCount > 0 else { throw .noDevice(reason: "the driver (\(libraryPath)) sees no GPU") }
    guard (0..<deviceCount).contains(ordinal) else {
      throw .invalidRequest("device \(ordinal) does not exist; devices: 0..<\(deviceCount)")
    }
    return try CUDADevice(driver: self, ordinal: ordinal)
  }

  /// Devices 0..<deviceCount; empty when there are none.
  public func devices() throws(CUDAError) -> [CUDADevice] {
    var result: [CUDADevice] = []
    for i in 0..<deviceCount { result.append(try device(i)) }
    return result
  }
}
