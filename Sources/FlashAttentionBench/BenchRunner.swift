import FlashAttention

/// Runs a plan on one backend: calibrates a cost model (when there is a time budget),
/// shrinks the plan to fit, then measures every configuration, reporting each one as it
/// finishes.
public final class BenchRunner {
  public let backend: any AttentionBackend
  public var settings: MeasureSettings
  /// Wall-clock budget in seconds for our implementations (`nil`: none).
  public var maxSeconds: Double?
  /// Called with each configuration's records as soon as they are measured.
  public var onRecords: ([BenchRecord]) -> Void = { _ in }
  /// Called before each configuration: (index, count, label).
  public var onProgress: (Int, Int, String) -> Void = { _, _, _ in }
  /// Remarks produced while running (skips for time).
  public private(set) var notes: [String] = []

  public init(backend: any AttentionBackend, settings: MeasureSettings, maxSeconds: Double? = nil) {
    self.backend = backend
    self.settings = settings
    self.maxSeconds = maxSeconds
  }

  /// Measures a small problem to learn this machine's rates (FLOP/s per implementation
  /// and pass) and the cost of preparing inputs. Takes well under a second on a CPU.
  public func calibrate(dtype: DType, implementations: [Implementation]) -> CostModel {
    let c = BenchCase(batch: 1, heads: 4, seqlenQ: 512, headDim: 64, dtype: dtype)
    var rates: [String: Double] = [:]
    var prepareRate = 20e-9  // seconds per element; replaced by the measurement below
    for pass in [AttentionPass.forward, .backward] {
      let cc = c.with(pass: pass)
      for impl in implementations {
        guard let algorithm = impl.algorithm, let problem = try? cc.problem() else { continue }
        let start = ContinuousClock.now
        guard let p = try? backend.prepare(problem, algorithm: algorithm, pass: pass, dtype: dtype, seed: 1) else {
          continue
        }
        let prepared = Self.seconds(since: start)
        prepareRate = max(prepareRate, prepared / Double(cc.inputBytes / dtype.byteCount))
        // The fastest of three: other tenants only ever slow a run down, and the runner
        // corrects estimates that prove optimistic from the wall time it measures.
        guard let ms = try? p.measure(warmup: 1, repeats: 3), let best = ms.min(), best > 0 else { continue }
        rates[CostModel.key(impl, pass)] = cc.flops / (best * 1e-3)
      }
    }
    return CostModel(
      rates: rates, prepareSecondsPerElement: prepareRate, runsPerCase: settings.warmup + max(1, settings.repeats))
  }

  /// Measures every configuration of `plan`; `cost` (when given with a budget) decides,
  /// before each configuration, whether it still fits in the time left.
  public func run(_ plan: BenchPlan, cost: CostModel?) throws(AttentionError) -> [BenchRecord] {
    var items = try plan.items()
    // Plan order, which also numbers each configuration's fresh random inputs.
    let order = Dictionary(uniqueKeysWithValues: items.enumerated().map { ($1.benchCase, $0) })
    if let model = cost, maxSeconds != nil {
      // Cheapest first: when time runs out it is the costliest configurations that are cut,
      // and every experiment keeps its small points.
      items.sort {
        let a = model.seconds($0.benchCase, implementations: $0.implementations)
        let b = model.seconds($1.benchCase, implementations: $1.implementations)
        return a != b ? a < b : order[$0.benchCase]! < order[$1.benchCase]!
      }
    }
    var records: [BenchRecord] = []
    let start = ContinuousClock.now
    var skipped: [String] = []
    // Measured wall time / estimate of the configurations run so far: the model comes from
    // a small problem, and big ones pay for page faults and memory traffic it does not see.
    var correction = 1.0
    for (index, item) in items.enumerated() {
      let c = item.benchCase
      let expected = cost.map { $0.seconds(c, implementations: item.implementations) }
      if let limit = maxSeconds, let expected, index > 0 {
        // 25% headroom: one configuration's time varies that much on a shared machine, and
        // a budget is a promise.
        if Self.seconds(since: start) + expected * correction * 1.25 > limit {
          skipped.append("\(c) (est. \(Self.rounded(expected * correction)) s)")
          continue
        }
      }
      onProgress(index, items.count, c.description)
      let caseStart = ContinuousClock.now
      // Fresh inputs per configuration (the seed plus its plan index), the same for every
      // implementation of it so that their outputs can be compared.
      var caseSettings = settings
      caseSettings.seed = settings.seed &+ UInt64(order[c] ?? index)
      let rows = CaseMeasurement.measure(
        c, implementations: item.implementations, experiments: item.experiments, backend: backend,
        settings: caseSettings)
      if let expected, expected > 0 {
        let ratio = min(20, max(0.25, Self.seconds(since: caseStart) / expected))
        // Rise at once, fall slowly: underestimating costs the budget, overestimating a point.
        correction = index == 0 ? ratio : max(ratio, 0.5 * correction + 0.5 * ratio)
      }
      records += rows
      onRecords(rows)
    }
    onProgress(items.count, items.count, "done")
    if !skipped.isEmpty {
      notes.append(
        "Out of time (--max-seconds \(Int(maxSeconds ?? 0))): skipped \(skipped.count) configuration(s): "
          + skipped.joined(separator: "; ") + ".")
    }
    return records
  }

  static func rounded(_ s: Double) -> String { s < 10 ? String(format: "%.1f", s) : String(Int(s.rounded())) }

  static func seconds(since start: ContinuousClock.Instant) -> Double {
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
  }
}
