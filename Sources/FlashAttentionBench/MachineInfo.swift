import Foundation

/// A one-line description of the host for reports: CPU model, cores, memory, OS.
public enum MachineInfo {
  public static var cpuModel: String {
    if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
      let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
      let value = line.split(separator: ":", maxSplits: 1).last
    {
      return value.trimmingCharacters(in: .whitespaces)
    }
    #if arch(arm64)
      return "arm64 CPU"
    #else
      return "x86-64 CPU"
    #endif
  }

  /// Memory the kernel says is available now (Linux `MemAvailable`), else physical memory.
  public static var availableMemoryBytes: Int {
    if let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
      let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") })
    {
      let parts = line.split(separator: " ")
      if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
    }
    return Int(ProcessInfo.processInfo.physicalMemory)
  }

  public static var summary: String {
    let p = ProcessInfo.processInfo
    let gib = Double(p.physicalMemory) / 1_073_741_824
    return "\(cpuModel), \(p.activeProcessorCount) cores, \(String(format: "%.0f", gib)) GiB RAM, "
      + "\(p.operatingSystemVersionString)"
  }
}
