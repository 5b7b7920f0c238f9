import Foundation
@testable import FlashAttentionCUDA

/// Whether NVRTC can be loaded here (set `FLASH_ATTN_NVRTC` to a wheel's `nvidia/cu13/lib`
/// to run the compile tests on a machine without the CUDA toolkit).
enum Availability {
  static let nvrtc: Bool = (try? NVRTC.shared()) != nil
  static let gpu: Bool = ((try? CUDADriver.shared())?.deviceCount ?? 0) > 0
}

/// A fresh, empty folder under the temporary directory.
func makeTemporaryFolder(_ name: String) -> String {
  let path = NSTemporaryDirectory() + "flash-attn-tests-\(name)-\(UInt32.random(in: 0...UInt32.max))"
  try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  return path
}

func touch(_ path: String) {
  try? FileManager.default.createDirectory(
    atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
  FileManager.default.createFile(atPath: path, contents: Data([0x7f]))
}
