import FlashAttention
import Foundation

/// One `.npy` output named on the command line.
struct OutputFile {
  let option: String
  let path: String
  var label: String { "\(option) \(path)" }
}

/// Output handling that leaves nothing behind on failure: outputs are checked before any
/// work, then all staged (written in full to temporaries) before the first replaces its
/// destination, and removed again if a later one cannot be put in place.
enum OutputFiles {
  /// Fails early — before reading big inputs or computing — when two outputs name the same
  /// file, a folder does not exist or cannot be written, or an output path is a folder.
  static func check(_ outputs: [OutputFile]) throws(AttentionError) {
    var seen: [String: OutputFile] = [:]
    for output in outputs {
      let key = URL(fileURLWithPath: output.path).standardizedFileURL.path
      if let earlier = seen[key] {
        throw .invalidArgument(
          argument: output.option, value: output.path,
          expected: "a different file than \(earlier.option); each output needs its own file")
      }
      seen[key] = output
      let fileManager = FileManager.default
      var isFolder: ObjCBool = false
      if fileManager.fileExists(atPath: output.path, isDirectory: &isFolder), isFolder.boolValue {
        throw .file(path: output.label, reason: "is a folder; expected a file name to write")
      }
      let folder = URL(fileURLWithPath: output.path).deletingLastPathComponent().path
      guard fileManager.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
        throw .file(path: output.label, reason: "its folder \(folder) does not exist")
      }
      guard fileManager.isWritableFile(atPath: folder) else {
        throw .file(path: output.label, reason: "its folder \(folder) is not writable")
      }
    }
  }

  /// Writes every tensor to its output, all or nothing.
  static func write(_ items: [(OutputFile, AnyTensor)]) throws(AttentionError) {
    let group = StagedFileGroup()
    for (output, tensor) in items {
      do {
        group.add(try NumPyFile.stage(tensor, to: output.path))
      } catch {
        group.discard()
        if case let .file(_, reason) = error { throw .file(path: output.label, reason: reason) }
        throw error
      }
    }
    do {
      try group.commit()
    } catch {
      if case let .file(path, reason) = error,
        let output = items.first(where: { $0.0.path == path })?.0
      {
        throw .file(path: output.label, reason: reason)
      }
      throw error
    }
  }
}
