import FlashAttention

/// Errors of the CUDA runtime layer: loading the libraries, driver calls, NVRTC and cuBLAS.
/// Each case carries the library's own name for the failure (`CUDA_ERROR_OUT_OF_MEMORY`,
/// `NVRTC_ERROR_COMPILATION`, …) so a message can be searched for.
public enum CUDAError: Error, Equatable, Sendable, CustomStringConvertible {
  /// A shared library that could not be opened (`reason` is the loader's message or the
  /// list of places searched).
  case libraryNotLoaded(library: String, reason: String)
  /// A library that lacks a function we need (too old a version).
  case missingSymbol(library: String, symbol: String)
  /// The driver loaded but there is no usable GPU.
  case noDevice(reason: String)
  /// A driver call that returned an error.
  case driver(function: String, code: Int32, name: String, message: String)
  /// An NVRTC call (other than a failed compilation) that returned an error.
  case nvrtc(function: String, code: Int32, name: String)
  /// Generated source that NVRTC rejected: its log, and where the source was saved.
  case compilation(kernel: String, log: String, sourcePath: String?)
  /// A cuBLAS call that returned an error.
  case cublas(function: String, status: Int32, name: String)
  /// An allocation the device could not satisfy.
  case outOfMemory(device: String, requestedBytes: Int)
  /// A request the runtime cannot serve (a missing entry point, a bad argument).
  case invalidRequest(String)

  /// `CUDA_ERROR_OUT_OF_MEMORY`.
  public static let driverOutOfMemory: Int32 = 2

  public var description: String {
    switch self {
    case let .libraryNotLoaded(library, reason):
      return "cannot load \(library): \(reason)"
    case let .missingSymbol(library, symbol):
      return "\(library) does not export \(symbol) (too old a version?)"
    case let .noDevice(reason):
      return "no usable CUDA device: \(reason)"
    case let .driver(function, code, name, message):
      return "\(function) failed: \(name) (\(code)): \(message)"
    case let .nvrtc(function, code, name):
      return "\(function) failed: \(name) (\(code))"
    case let .compilation(kernel, log, sourcePath):
      let saved = sourcePath.map { " (source saved at \($0))" } ?? ""
      return "NVRTC could not compile \(kernel)\(saved):\n\(log)"
    case let .cublas(function, status, name):
      return "\(function) failed: \(name) (\(status))"
    case let .outOfMemory(device, requestedBytes):
      return "out of memory on \(device): could not allocate \(requestedBytes) bytes"
    case let .invalidRequest(message):
      return message
    }
  }

  /// The core's error: missing libraries or devices become `backendUnavailable` (callers
  /// may fall back to the CPU), allocation failures `outOfMemory`, the rest `backendFailure`.
  public var attentionError: AttentionError {
    switch self {
    case .libraryNotLoaded, .noDevice:
      return .backendUnavailable(backend: "cuda", reason: description)
    case let .outOfMemory(device, requestedBytes):
      return .outOfMemory(device: device, requestedBytes: requestedBytes)
    case let .driver(_, code, _, _) where code == Self.driverOutOfMemory:
      return .outOfMemory(device: "cuda", requestedBytes: 0)
    case .cublas(_, 3, _):  // CUBLAS_STATUS_ALLOC_FAILED: its workspace did not fit
      return .outOfMemory(device: "cuda", requestedBytes: 0)
    default:
      return .backendFailure(backend: "cuda", message: description)
    }
  }
}
