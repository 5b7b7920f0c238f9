/// The resources ptxas reports for one kernel (`--ptxas-options=-v`), read from NVRTC's log.
public struct PtxasReport: Sendable, Hashable, Codable {
  public var function: String
  public var arch: String
  public var registers: Int
  /// Static shared memory in bytes (dynamic shared memory is set at launch, not here).
  public var sharedMemoryBytes: Int
  public var stackFrameBytes: Int
  public var spillStoreBytes: Int
  public var spillLoadBytes: Int
  public var barriers: Int
  /// ptxas serialised the function's `wgmma.mma_async` (a "Potential Performance Loss" note,
  /// C7510–C7520): each waits for the one before, so the tensor cores idle between them. The
  /// Hopper kernels are written so this never happens; it is a regression when it does.
  public var wgmmaSerialized: Bool

  public init(
    function: String, arch: String = "", registers: Int = 0, sharedMemoryBytes: Int = 0,
    stackFrameBytes: Int = 0, spillStoreBytes: Int = 0, spillLoadBytes: Int = 0, barriers: Int = 0,
    wgmmaSerialized: Bool = false
  ) {
    self.wgmmaSerialized = wgmmaSerialized
    self.function = function
    self.arch = arch
    self.registers = registers
    self.sharedMemoryBytes = sharedMemoryBytes
    self.stackFrameBytes = stackFrameBytes
    self.spillStoreBytes = spillStoreBytes
    self.spillLoadBytes = spillLoadBytes
    self.barriers = barriers
  }

  /// Whether ptxas moved registers to local memory.
  public var spills: Bool { spillStoreBytes > 0 || spillLoadBytes > 0 }

  /// Parses every `Compiling entry function 'name' for 'sm_XX'` section of a ptxas log:
  ///
  ///     ptxas info    : Compiling entry function 'k' for 'sm_90a'
  ///     ptxas info    : Function properties for k
  ///     ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
  ///     ptxas info    : Used 8 registers, used 1 barriers, 1024 bytes smem, 368 bytes cmem[0]
  ///
  /// and the notes, which come before the section of the function they name:
  ///
  ///     ptxas info    : (C7520) Potential Performance Loss: wgmma.mma_async instructions are
  ///                     serialized due to … in the function 'k'
  public static func parse(log: String) -> [PtxasReport] {
    var reports: [PtxasReport] = []
    var current: PtxasReport?
    var serialized: Set<String> = []
    for line in log.split(whereSeparator: \.isNewline).map(String.init) {
      if line.contains("wgmma.mma_async instructions are serialized"),
        let r = line.range(of: "in the function '")
      {
        serialized.insert(String(line[r.upperBound...].prefix { $0 != "'" }))
        continue
      }
      if let range = line.range(of: "Compiling entry function '") {
        if let current { reports.append(current) }
        let rest = line[range.upperBound...]
        let name = String(rest.prefix { $0 != "'" })
        var arch = ""
        if let forRange = rest.range(of: "for '") {
          arch = String(rest[forRange.upperBound...].prefix { $0 != "'" })
        }
        current = PtxasReport(function: name, arch: arch)
        continue
      }
      guard current != nil else { continue }
      if line.contains("stack frame") || line.contains("spill") {
        current!.stackFrameBytes = number(before: "bytes stack frame", in: line) ?? current!.stackFrameBytes
        current!.spillStoreBytes = number(before: "bytes spill stores", in: line) ?? current!.spillStoreBytes
        current!.spillLoadBytes = number(before: "bytes spill loads", in: line) ?? current!.spillLoadBytes
      }
      if line.contains("Used "), let registers = number(after: "Used ", in: line) {
        current!.registers = registers
        current!.sharedMemoryBytes = number(before: "bytes smem", in: line) ?? 0
        current!.barriers = number(after: "used ", before: "barriers", in: line) ?? 0
      }
    }
    if let current { reports.append(current) }
    for i in reports.indices where serialized.contains(reports[i].function) { reports[i].wgmmaSerialized = true }
    return reports
  }

  /// The integer just before `marker`, e.g. `1024` in `1024 bytes smem`.
  static func number(before marker: String, in line: String) -> Int? {
    guard let r = line.range(of: marker) else { return nil }
    let head = line[..<r.lowerBound].droppingTrailingSpaces()
    let digits = head.reversed().prefix { $0.isNumber }
    return digits.isEmpty ? nil : Int(String(digits.reversed()))
  }

  /// The integer just after `marker` (optionally only if `before` follows it).
  static func number(after marker: String, before: String? = nil, in line: String) -> Int? {
    var search = line[...]
    while let r = search.range(of: marker) {
      let digits = search[r.upperBound...].prefix { $0.isNumber }
      if !digits.isEmpty {
        let tail = search[r.upperBound...].dropFirst(digits.count).drop { $0 == " " }
        if before == nil || tail.hasPrefix(before!) { return Int(digits) }
      }
      search = search[r.upperBound...]
    }
    return nil
  }
}

extension StringProtocol {
  fileprivate func droppingTrailingSpaces() -> SubSequence {
    var s = self[...]
    while s.last == " " { s = s.dropLast() }
    return s
  }
}
