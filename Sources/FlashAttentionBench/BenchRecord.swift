import Foundation
import FlashAttention

/// What happened to one (configuration, implementation).
public enum BenchStatus: String, Hashable, Sendable, Codable {
  case ok
  /// The device could not allocate what the configuration needs — a result, as in seed 001.
  case oom
  /// The backend does not run this shape or dtype.
  case unsupported
  /// Any other failure; `note` holds the message.
  case error
}

/// One row of `results.json` / `results.csv`: one implementation on one configuration.
/// The PyTorch script writes the same fields.
public struct BenchRecord: Hashable, Sendable, Codable {
  public var implementation: String
  public var device: String
  public var dtype: String
  public var batch: Int
  public var heads: Int
  public var kvHeads: Int
  public var seqlenQ: Int
  public var seqlenK: Int
  public var headDim: Int
  public var causal: Bool
  public var pass: String
  /// Median, fastest and slowest of the timed runs, milliseconds.
  public var medianMs: Double?
  public var minMs: Double?
  public var maxMs: Double?
  /// FLOPs of the pass (see `BenchCase.flops`) / median time, in 10¹² per second.
  public var tflops: Double?
  /// Peak memory allocated beyond the inputs during one pass, bytes.
  public var peakMemoryBytes: Int?
  /// max |flash − standard| over the outputs of this pass (O, or dQ/dK/dV), same inputs;
  /// for PyTorch rows, against its naive float32 attention.
  public var maxError: Double?
  public var status: BenchStatus
  /// The experiments (sweeps) of the plan this configuration belongs to.
  public var experiments: [String]
  /// Why a row is not `ok`, or other remarks.
  public var note: String?

  public init(
    implementation: Implementation, device: String, benchCase c: BenchCase, status: BenchStatus,
    experiments: [String] = [], note: String? = nil
  ) {
    self.implementation = implementation.name
    self.device = device
    dtype = c.dtype.shortName
    batch = c.batch
    heads = c.heads
    kvHeads = c.kvHeads
    seqlenQ = c.seqlenQ
    seqlenK = c.seqlenK
    headDim = c.headDim
    causal = c.causal
    pass = c.pass.rawValue
    self.status = status
    self.experiments = experiments
    self.note = note
  }

  enum CodingKeys: String, CodingKey {
    case implementation, device, dtype, batch, heads, kvHeads, seqlenQ, seqlenK, headDim, causal, pass
    case medianMs, minMs, maxMs, tflops, peakMemoryBytes, maxError, status, experiments, note
  }

  /// Reads a record; `experiments` and `note` may be absent (records written by other tools).
  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    implementation = try c.decode(String.self, forKey: .implementation)
    device = try c.decodeIfPresent(String.self, forKey: .device) ?? ""
    dtype = try c.decode(String.self, forKey: .dtype)
    batch = try c.decode(Int.self, forKey: .batch)
    heads = try c.decode(Int.self, forKey: .heads)
    kvHeads = try c.decodeIfPresent(Int.self, forKey: .kvHeads) ?? heads
    seqlenQ = try c.decode(Int.self, forKey: .seqlenQ)
    seqlenK = try c.decodeIfPresent(Int.self, forKey: .seqlenK) ?? seqlenQ
    headDim = try c.decode(Int.self, forKey: .headDim)
    causal = try c.decode(Bool.self, forKey: .causal)
    pass = try c.decode(String.self, forKey: .pass)
    medianMs = try c.decodeIfPresent(Double.self, forKey: .medianMs)
    minMs = try c.decodeIfPresent(Double.self, forKey: .minMs)
    maxMs = try c.decodeIfPresent(Double.self, forKey: .maxMs)
    tflops = try c.decodeIfPresent(Double.self, forKey: .tflops)
    peakMemoryBytes = try c.decodeIfPresent(Int.self, forKey: .peakMemoryBytes)
    maxError = try c.decodeIfPresent(Double.self, forKey: .maxError)
    status = try c.decode(BenchStatus.self, forKey: .status)
    experiments = try c.decodeIfPresent([String].self, forKey: .experiments) ?? []
    note = try c.decodeIfPresent(String.self, forKey: .note)
  }

  /// Writes every field, missing values as `null`, so each record has the full schema.
  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(implementation, forKey: .implementation)
    try c.encode(device, forKey: .device)
    try c.encode(dtype, forKey: .dtype)
    try c.encode(batch, forKey: .batch)
    try c.encode(heads, forKey: .heads)
    try c.encode(kvHeads, forKey: .kvHeads)
    try c.encode(seqlenQ, forKey: .seqlenQ)
    try c.encode(seqlenK, forKey: .seqlenK)
    try c.encode(headDim, forKey: .headDim)
    try c.encode(causal, forKey: .causal)
    try c.encode(pass, forKey: .pass)
    try c.encode(medianMs, forKey: .medianMs)
    try c.encode(minMs, forKey: .minMs)
    try c.encode(maxMs, forKey: .maxMs)
    try c.encode(tflops, forKey: .tflops)
    try c.encode(peakMemoryBytes, forKey: .peakMemoryBytes)
    try c.encode(maxError, forKey: .maxError)
    try c.encode(status, forKey: .status)
    try c.encode(experiments, forKey: .experiments)
    try c.encode(note, forKey: .note)
  }

  /// The configuration of this row (`nil` if the dtype or pass is not one we know).
  public var benchCase: BenchCase? {
    guard let dt = DType(name: dtype), let ps = AttentionPass(rawValue: pass) else { return nil }
    return BenchCase(
      batch: batch, heads: heads, kvHeads: kvHeads, seqlenQ: seqlenQ, seqlenK: seqlenK, headDim: headDim,
      causal: causal, dtype: dt, pass: ps)
  }

  /// Identifies the same configuration and implementation across runs (for `compare`).
  public var matchKey: String {
    "\(implementation)|\(dtype)|\(batch)|\(heads)|\(kvHeads)|\(seqlenQ)|\(seqlenK)|\(headDim)|\(causal)|\(pass)"
  }

  /// Sets the timing fields from per-run milliseconds and the pass's FLOPs.
  public mutating func setTimes(_ ms: [Double], flops: Double) {
    let s = ms.sorted()
    guard !s.isEmpty else { return }
    let mid = s.count / 2
    let median = s.count % 2 == 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
    medianMs = median
    minMs = s.first
    maxMs = s.last
    tflops = median > 0 ? flops / (median * 1e-3) / 1e12 : nil
  }

  /// The CSV/JSON columns, in order.
  public static let columns = [
    "implementation", "device", "dtype", "batch", "heads", "kvHeads", "seqlenQ", "seqlenK", "headDim",
    "causal", "pass", "medianMs", "minMs", "maxMs", "tflops", "peakMemoryBytes", "maxError", "status",
    "experiments", "note",
  ]

  /// This row's fields as CSV cells (empty for a missing value), in `columns` order.
  public var csvCells: [String] {
    func num(_ v: Double?) -> String { v.map { $0.isFinite ? String($0) : String(describing: $0) } ?? "" }
    return [
      implementation, device, dtype, String(batch), String(heads), String(kvHeads), String(seqlenQ),
      String(seqlenK), String(headDim), String(causal), pass, num(medianMs), num(minMs), num(maxMs),
      num(tflops), peakMemoryBytes.map(String.init) ?? "", num(maxError), status.rawValue,
      experiments.joined(separator: ";"), note ?? "",
    ]
  }
}

/// Metadata stored with the records in `results.json`.
public struct BenchMetadata: Hashable, Sendable, Codable {
  public var command: String
  public var date: String
  public var machine: String
  public var device: String
  public var notes: [String]
  public init(command: String, date: String, machine: String, device: String, notes: [String]) {
    self.command = command
    self.date = date
    self.machine = machine
    self.device = device
    self.notes = notes
  }
}

/// `results.json`: `{"metadata": …, "records": […]}`.
public struct BenchResults: Sendable, Codable {
  public var metadata: BenchMetadata
  public var records: [BenchRecord]
  public init(metadata: BenchMetadata, records: [BenchRecord]) {
    self.metadata = metadata
    self.records = records
  }

  public func jsonData() throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(
      positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return try encoder.encode(self)
  }

  /// Reads `results.json` as written here, or a bare array of records (the PyTorch
  /// script's output). Throws `AttentionError.file` naming the path.
  public static func load(path: String) throws(AttentionError) -> BenchResults {
    let data: Data
    do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
      throw .file(path: path, reason: "cannot read: \(error.localizedDescription)")
    }
    return try decode(data, path: path)
  }

  public static func decode(_ data: Data, path: String) throws(AttentionError) -> BenchResults {
    let decoder = JSONDecoder()
    decoder.nonConformingFloatDecodingStrategy = .convertFromString(
      positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    if let full = try? decoder.decode(BenchResults.self, from: data) { return full }
    do {
      let records = try decoder.decode([BenchRecord].self, from: data)
      return BenchResults(
        metadata: BenchMetadata(command: "", date: "", machine: "", device: "", notes: []), records: records)
    } catch {
      throw .file(path: path, reason: "not a results.json of flash-attn bench: \(error)")
    }
  }

  /// `results.csv`: a header line with `BenchRecord.columns`, then one line per record.
  public func csv() -> String {
    var lines = [BenchRecord.columns.joined(separator: ",")]
    for r in records { lines.append(r.csvCells.map(Self.csvEscape).joined(separator: ",")) }
    return lines.joined(separator: "\n") + "\n"
  }

  static func csvEscape(_ s: String) -> String {
    guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) else { return s }
    return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
  }
}
