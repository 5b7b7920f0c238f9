/// The one error type of every public entry point.
///
/// Each case names the argument (or file, or backend) at fault and what would have
/// been accepted, so a command-line tool can print `description` as a single line.
public enum AttentionError: Error, Equatable, Sendable, CustomStringConvertible {
  /// A scalar argument outside its accepted range, e.g. `headDim` = 300.
  case invalidArgument(argument: String, value: String, expected: String)
  /// A tensor whose shape does not agree with the problem or with the other tensors.
  case shapeMismatch(argument: String, shape: [Int], expected: String)
  /// Valid in general but not supported by the chosen backend, e.g. headDim 40 on a GPU kernel.
  case unsupported(argument: String, value: String, supported: String)
  /// A backend that cannot run on this machine (no driver, no GPU); the caller may fall back.
  case backendUnavailable(backend: String, reason: String)
  /// A file that cannot be read or written, or whose content is malformed.
  case file(path: String, reason: String)
  /// An allocation the device could not satisfy.
  case outOfMemory(device: String, requestedBytes: Int)
  /// A failure inside a backend (driver error, compile error) with its own message.
  case backendFailure(backend: String, message: String)

  public var description: String {
    switch self {
    case let .invalidArgument(argument, value, expected):
      return "invalid \(argument): \(value); expected \(expected)"
    case let .shapeMismatch(argument, shape, expected):
      return "shape mismatch for \(argument): got (\(shape.map(String.init).joined(separator: ", "))); expected \(expected)"
    case let .unsupported(argument, value, supported):
      return "unsupported \(argument): \(value); supported: \(supported)"
    case let .backendUnavailable(backend, reason):
      return "\(backend) backend unavailable: \(reason)"
    case let .file(path, reason):
      return "\(path): \(reason)"
    case let .outOfMemory(device, requestedBytes):
      return "out of memory on \(device): could not allocate \(requestedBytes) bytes"
    case let .backendFailure(backend, message):
      return "\(backend) error: \(message)"
    }
  }
}
