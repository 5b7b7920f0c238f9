import Foundation

/// What the CPU backend needs to know about the machine.
enum CPUMachine {
  /// Cores the process may run on.
  static var coreCount: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

  /// The processor's model name from /proc/cpuinfo (Linux), e.g. "AMD EPYC"; "CPU" elsewhere.
  static let modelName: String = {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "CPU" }
    for line in text.split(separator: "\n") where line.hasPrefix("model name") {
      if let colon = line.firstIndex(of: ":") {
        let name = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        if !name.isEmpty { return name }
      }
    }
    return "CPU"
  }()

  /// The most the standard algorithm may hold in its quadratic matrices: half the physical
  /// memory, so that a benchmark records "out of memory" instead of swapping or being killed.
  static var memoryBudget: Int { Int(ProcessInfo.processInfo.physicalMemory / 2) }
}
