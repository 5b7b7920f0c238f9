import FlashAttention

/// A quantity a sweep varies, used to label tables and chart axes.
public enum SweepAxis: String, Hashable, Sendable, Codable, CaseIterable {
  case batch, seqlen, heads, kvHeads, headDim, embeddingDim, causal, pass, dtype

  /// Column and axis label, with the unit where there is one.
  public var label: String {
    switch self {
    case .batch: "batch"
    case .seqlen: "sequence length (tokens)"
    case .heads: "heads"
    case .kvHeads: "kv heads"
    case .headDim: "head dim"
    case .embeddingDim: "embedding dim (heads × head dim)"
    case .causal: "causal"
    case .pass: "pass"
    case .dtype: "dtype"
    }
  }
  /// Short column name for tables.
  public var column: String {
    switch self {
    case .batch: "batch"
    case .seqlen: "seqlen"
    case .heads: "heads"
    case .kvHeads: "kv heads"
    case .headDim: "head dim"
    case .embeddingDim: "emb dim"
    case .causal: "causal"
    case .pass: "pass"
    case .dtype: "dtype"
    }
  }
  /// Numeric axes are drawn as lines; the others as grouped bars.
  public var isNumeric: Bool { ![.causal, .pass, .dtype].contains(self) }

  /// This axis's value in `c`, as text for tables and legends.
  public func text(_ c: BenchCase) -> String {
    switch self {
    case .batch: String(c.batch)
    case .seqlen: c.seqlenQ == c.seqlenK ? String(c.seqlenQ) : "\(c.seqlenQ)×\(c.seqlenK)"
    case .heads: String(c.heads)
    case .kvHeads: String(c.kvHeads)
    case .headDim: String(c.headDim)
    case .embeddingDim: String(c.embeddingDim)
    case .causal: c.causal ? "causal" : "non-causal"
    case .pass: c.pass.rawValue
    case .dtype: c.dtype.shortName
    }
  }
  /// This axis's value in `c` as a number (for numeric axes); categorical axes give an index.
  public func number(_ c: BenchCase) -> Double {
    switch self {
    case .batch: Double(c.batch)
    case .seqlen: Double(c.seqlenQ)
    case .heads: Double(c.heads)
    case .kvHeads: Double(c.kvHeads)
    case .headDim: Double(c.headDim)
    case .embeddingDim: Double(c.embeddingDim)
    case .causal: c.causal ? 1 : 0
    case .pass: Double(AttentionPass.allCases.firstIndex(of: c.pass) ?? 0)
    case .dtype: Double(DType.allCases.firstIndex(of: c.dtype) ?? 0)
    }
  }
}

/// The axes of a cartesian sweep. Every list must be non-empty; the expansion is the
/// product of all of them.
public struct SweepAxes: Hashable, Sendable {
  /// How an embedding-dim axis fixes the shape: `emb = heads × headDim`.
  public enum EmbeddingSplit: String, Hashable, Sendable {
    /// Heads come from `heads`; headDim = emb / heads (seed 001: "Embedding Dimensions (16 heads)").
    case fixHeads
    /// headDim comes from `headDim`; heads = emb / headDim.
    case fixHeadDim
  }

  public var batch: [Int] = [1]
  public var seqlen: [Int] = [512]
  /// Key length; `nil` means seqlenK = seqlenQ.
  public var seqlenK: [Int]? = nil
  public var heads: [Int] = [8]
  /// Key/value heads (GQA); `nil` means as many as query heads.
  public var kvHeads: [Int]? = nil
  public var headDim: [Int] = [64]
  /// When set, replaces `headDim` (or `heads`, per `embeddingSplit`).
  public var embeddingDim: [Int]? = nil
  public var embeddingSplit: EmbeddingSplit = .fixHeads
  /// When set, batch = max(1, tokens / seqlen) for every seqlen (the papers' fixed
  /// batch × seqlen = 16k grid) and `batch` is ignored.
  public var tokens: Int? = nil
  public var causal: [Bool] = [false]
  public var dtype: [DType] = [.float32]
  public var pass: [AttentionPass] = [.forward]

  public init() {}

  /// Every combination, in a stable order (outer: dtype, pass, causal; inner: seqlen).
  /// Throws `.invalidArgument` naming the axis when a list is empty or an embedding dim
  /// does not split evenly.
  public func expand() throws(AttentionError) -> [BenchCase] {
    let lists: [(String, Int)] = [
      ("batch", batch.count), ("seqlen", seqlen.count), ("heads", heads.count),
      ("head-dim", headDim.count), ("causal", causal.count), ("dtype", dtype.count),
      ("pass", pass.count), ("seqlen-k", seqlenK?.count ?? 1), ("kv-heads", kvHeads?.count ?? 1),
      ("emb", embeddingDim?.count ?? 1),
    ]
    for (name, count) in lists where count == 0 {
      throw .invalidArgument(argument: name, value: "(empty)", expected: "at least one value")
    }
    var out: [BenchCase] = []
    var seen = Set<BenchCase>()
    for dt in dtype {
      for ps in pass {
        for cz in causal {
          for (h, d) in try headShapes() {
            for kv in kvHeads ?? [h] {
              for b in tokens == nil ? batch : [0] {
                for n in seqlen {
                  for nk in seqlenK ?? [n] {
                    let bb = tokens.map { max(1, $0 / n) } ?? b
                    let c = BenchCase(
                      batch: bb, heads: h, kvHeads: kv, seqlenQ: n, seqlenK: nk, headDim: d,
                      causal: cz, dtype: dt, pass: ps)
                    if seen.insert(c).inserted { out.append(c) }
                  }
                }
              }
            }
          }
        }
      }
    }
    return out
  }

  /// (heads, headDim) pairs from the heads/headDim lists or the embedding-dim axis.
  private func headShapes() throws(AttentionError) -> [(Int, Int)] {
    guard let embs = embeddingDim else {
      return heads.flatMap { h in headDim.map { (h, $0) } }
    }
    var shapes: [(Int, Int)] = []
    for e in embs {
      switch embeddingSplit {
      case .fixHeads:
        for h in heads {
          guard h > 0, e % h == 0 else {
            throw .invalidArgument(
              argument: "emb", value: String(e), expected: "a multiple of heads (\(h))")
          }
          shapes.append((h, e / h))
        }
      case .fixHeadDim:
        for d in headDim {
          guard d > 0, e % d == 0 else {
            throw .invalidArgument(
              argument: "emb", value: String(e), expected: "a multiple of head-dim (\(d))")
          }
          shapes.append((e / d, d))
        }
      }
    }
    return shapes
  }
}

/// Which charts an experiment draws (see `ChartBuilder`).
public enum ChartKind: String, Hashable, Sendable, Codable, CaseIterable {
  /// Median time against the x axis, one line per implementation (and per varying option).
  case time
  /// TFLOP/s against the x axis.
  case tflops
  /// Speedup of flash over standard (standard time / flash time), grouped bars.
  case speedup
  /// Peak extra memory against the x axis.
  case memory
  /// Forward vs backward (or forward+backward) time, grouped bars.
  case passes
  /// TFLOP/s of flash on the x × y grid.
  case heatmap
}

/// A named sweep with the axis it varies: one table and a few charts in the report.
public struct Experiment: Hashable, Sendable {
  /// Short id, unique within a plan, used in file names: `seqlen`, `batch-x-seqlen`.
  public var name: String
  /// Title for the report, e.g. "Forward time vs sequence length (causal, batch 16)".
  public var title: String
  public var xAxis: SweepAxis
  /// Second axis of a grid (heatmap rows).
  public var yAxis: SweepAxis?
  public var axes: SweepAxes
  /// `nil`: every implementation of the run; otherwise only these (of those run).
  public var implementations: [Implementation]?
  public var charts: [ChartKind]

  public init(
    name: String, title: String, xAxis: SweepAxis, yAxis: SweepAxis? = nil, axes: SweepAxes,
    implementations: [Implementation]? = nil, charts: [ChartKind]? = nil
  ) {
    self.name = name
    self.title = title
    self.xAxis = xAxis
    self.yAxis = yAxis
    self.axes = axes
    self.implementations = implementations
    self.charts = charts ?? Self.defaultCharts(xAxis: xAxis, yAxis: yAxis, axes: axes)
  }

  /// The charts that make sense for these axes: lines of time and TFLOP/s, the flash
  /// speedup, memory against seqlen, a pass comparison when passes vary, a heatmap for grids.
  public static func defaultCharts(xAxis: SweepAxis, yAxis: SweepAxis?, axes: SweepAxes) -> [ChartKind] {
    var kinds: [ChartKind] = [.time, .tflops, .speedup]
    if xAxis == .seqlen { kinds.append(.memory) }
    if axes.pass.count > 1 { kinds.append(.passes) }
    if yAxis != nil { kinds.append(.heatmap) }
    return kinds
  }

  public func cases() throws(AttentionError) -> [BenchCase] { try axes.expand() }
}
