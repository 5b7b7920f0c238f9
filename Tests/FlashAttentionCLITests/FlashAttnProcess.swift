import Foundation

/// Runs the real `flash-attn` executable, built by the test target's dependency on it, in
/// the same build folder as this test bundle.
enum FlashAttnProcess {
  struct Result {
    var status: Int32
    var standardOutput: String
    var standardError: String
    /// Non-empty lines of standard error.
    var errorLines: [Substring] { standardError.split(whereSeparator: \.isNewline) }
  }

  enum LocateError: Error, CustomStringConvertible {
    case notFound([String])
    var description: String {
      if case let .notFound(places) = self {
        return "flash-attn executable not found; looked in \(places.joined(separator: ", ")) (set FLASH_ATTN_BINARY)"
      }
      return ""
    }
  }

  /// `$FLASH_ATTN_BINARY`, else `flash-attn` next to the running test binary (SwiftPM puts
  /// every product of a build in one folder), else next to the `.xctest` bundle.
  static func executable() throws -> String {
    if let explicit = ProcessInfo.processInfo.environment["FLASH_ATTN_BINARY"] { return explicit }
    var folders: [String] = []
    let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    folders.append(me.deletingLastPathComponent().path)
    let bundle = Bundle.main.bundleURL
    folders.append(bundle.path)
    folders.append(bundle.deletingLastPathComponent().path)
    for folder in folders {
      let candidate = "\(folder)/flash-attn"
      if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    throw LocateError.notFound(folders)
  }

  /// Runs `flash-attn arguments...` in `folder` and waits for it.
  static func run(_ arguments: [String], in folder: String) throws -> Result {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try executable())
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: folder)
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Read both pipes to the end before waiting, so a chatty child never blocks on a full pipe.
    let group = DispatchGroup()
    nonisolated(unsafe) var errData = Data()
    DispatchQueue.global().async(group: group) { errData = err.fileHandleForReading.readDataToEndOfFile() }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    process.waitUntilExit()
    return Result(
      status: process.terminationStatus,
      standardOutput: String(decoding: outData, as: UTF8.self),
      standardError: String(decoding: errData, as: UTF8.self))
  }
}
