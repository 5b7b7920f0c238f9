import FlashAttention

/// What a run measures: experiments, the unique configurations they need, and each
/// configuration's implementations. Built from a preset or an explicit sweep, then
/// possibly shrunk by `BudgetPlanner`.
public struct BenchPlan: Sendable {
  public var experiments: [Experiment]
  /// Our implementations (flash, standard) run in-process.
  public var implementations: [Implementation]
  /// Remarks for the report: scaling done, configurations skipped.
  public var notes: [String] = []
  /// Configurations left out to fit the budget; `items()` omits them.
  public var skipped: Set<BenchCase> = []

  public init(experiments: [Experiment], implementations: [Implementation]) {
    self.experiments = experiments
    self.implementations = implementations
  }

  /// One configuration to measure, with the implementations and experiments that want it.
  public struct Item: Hashable, Sendable {
    public var benchCase: BenchCase
    public var implementations: [Implementation]
    public var experiments: [String]
  }

  /// Unique configurations in first-seen order; a case shared by several experiments is
  /// measured once for the union of their implementations.
  public func items() throws(AttentionError) -> [Item] {
    var order: [BenchCase] = []
    var impls: [BenchCase: Set<Implementation>] = [:]
    var exps: [BenchCase: [String]] = [:]
    for e in experiments {
      let wanted = e.implementations.map { w in implementations.filter(w.contains) } ?? implementations
      for c in try e.cases() where !skipped.contains(c) {
        if impls[c] == nil { order.append(c) }
        impls[c, default: []].formUnion(wanted)
        if !(exps[c]?.contains(e.name) ?? false) { exps[c, default: []].append(e.name) }
      }
    }
    return order.compactMap { c in
      let set = impls[c] ?? []
      guard !set.isEmpty else { return nil }
      return Item(benchCase: c, implementations: set.sorted(), experiments: exps[c] ?? [])
    }
  }

  /// The implementations an experiment shows, among `all` (ours and PyTorch's).
  public func implementations(of e: Experiment, among all: [Implementation]) -> [Implementation] {
    guard let w = e.implementations else { return all }
    return all.filter { w.contains($0) || ($0.isPyTorch && w.contains(.standard)) }
  }
}

/// Seconds a configuration is expected to take, from rates measured on this machine.
public struct CostModel: Sendable {
  /// FLOP/s of each (implementation, pass) measured on a small calibration problem.
  public var rates: [String: Double]
  /// Seconds per input element to prepare random inputs.
  public var prepareSecondsPerElement: Double
  /// Warm-up + timed runs per configuration.
  public var runsPerCase: Int
  /// Seconds per byte of S and P a materialising (standard or naive) implementation
  /// writes per run: past the caches its time follows memory, not FLOPs, which a small
  /// calibration problem does not show. 0.5 ns/byte was measured on the 2-core machine
  /// here (B2 H32 N2048: 2.1 GB, about 1 s of a 2.4 s run); elsewhere the runner's
  /// wall-time correction adjusts it.
  public var secondsPerMaterialisedByte = 0.5e-9

  public init(rates: [String: Double], prepareSecondsPerElement: Double, runsPerCase: Int) {
    self.rates = rates
    self.prepareSecondsPerElement = prepareSecondsPerElement
    self.runsPerCase = runsPerCase
  }

  static func key(_ impl: Implementation, _ pass: AttentionPass) -> String { "\(impl.name)|\(pass.rawValue)" }

  /// The rate for one (implementation, pass); falls back to the forward rate of the same
  /// implementation divided by 2 (backwards run slower), then to the slowest rate known.
  public func rate(_ impl: Implementation, _ pass: AttentionPass) -> Double {
    if let r = rates[Self.key(impl, pass)] { return r }
    if let r = rates[Self.key(impl, .forward)] { return r / 2 }
    return rates.values.min() ?? 1e9
  }

  /// Expected seconds for `item`: input preparation plus every run of every implementation
  /// (PyTorch rows count like standard).
  public func seconds(_ c: BenchCase, implementations: [Implementation]) -> Double {
    let elements = Double(c.inputBytes / c.dtype.byteCount)
    var total = 0.0
    for impl in implementations {
      let asRun = impl.isPyTorch ? Implementation.standard : impl
      total += elements * prepareSecondsPerElement
      total += Double(runsPerCase) * c.flops / rate(asRun, c.pass)
      if asRun == .standard {
        total += Double(runsPerCase) * Double(c.standardScoreBytes) * secondsPerMaterialisedByte
      }
    }
    return total
  }
}

/// Shrinks a plan to a time budget: first divides every batch by 2, 4, 8, … (down to 1),
/// keeping the shape of each sweep; then drops the most expensive configurations. Every
/// change is written into the plan's notes so the report says what was skipped.
public enum BudgetPlanner {
  public static func fit(
    _ plan: BenchPlan, budgetSeconds: Double, cost: CostModel, extraImplementations: [Implementation] = []
  ) throws(AttentionError) -> BenchPlan {
    func total(_ p: BenchPlan) throws(AttentionError) -> Double {
      try p.items().reduce(0) { $0 + cost.seconds($1.benchCase, implementations: $1.implementations + extra($1)) }
    }
    func extra(_ item: BenchPlan.Item) -> [Implementation] {
      item.implementations.contains(.standard) ? extraImplementations : []
    }
    let original = try total(plan)
    // Aim below the budget: the estimate comes from a small problem and is optimistic.
    let target = budgetSeconds * 0.9
    guard original > target else { return plan }

    // Try every batch divisor 1, 2, 4, … and keep the one that, after dropping the
    // costliest configurations to fit, measures the most configurations; on a tie the
    // smaller divisor (the shapes closer to the preset's own) wins.
    func dropToFit(_ p: BenchPlan) throws(AttentionError) -> (kept: Int, dropped: [(BenchCase, Double)]) {
      let items = try p.items()
      var t = items.reduce(0) { $0 + cost.seconds($1.benchCase, implementations: $1.implementations + extra($1)) }
      let byCost = items.map { ($0.benchCase, cost.seconds($0.benchCase, implementations: $0.implementations + extra($0))) }
        .sorted { $0.1 > $1.1 }
      var dropped: [(BenchCase, Double)] = []
      for (c, s) in byCost where t > target && dropped.count < items.count - 1 {
        dropped.append((c, s))
        t -= s
      }
      return (items.count - dropped.count, dropped)
    }
    let maxBatch = try plan.items().map(\.benchCase.batch).max() ?? 1
    var factor = 1
    var best = plan
    var bestFit = try dropToFit(plan)
    var divisor = 2
    while divisor <= max(1, maxBatch) {
      let candidate = scaled(plan, batchDivisor: divisor)
      let fit = try dropToFit(candidate)
      if fit.kept > bestFit.kept {
        factor = divisor
        best = candidate
        bestFit = fit
      }
      if fit.dropped.isEmpty { break }  // everything fits: smaller batches gain nothing
      divisor *= 2
    }
    var notes = plan.notes
    let estimate = { (s: Double) in String(format: "%.0f s", s) }
    if factor > 1 {
      notes.append(
        "Scaled to the \(estimate(budgetSeconds)) budget (--max-seconds): every batch divided by \(factor) "
          + "(floor 1; a sweep over batch by at most its smallest value); the full preset was estimated at "
          + "\(estimate(original)) here.")
    }
    let dropped = bestFit.dropped
    best.skipped = Set(dropped.map(\.0))
    if !dropped.isEmpty {
      let list = dropped.map { "\($0.0) (est. \(estimate($0.1)))" }.joined(separator: "; ")
      notes.append("Skipped \(dropped.count) configuration(s) that did not fit the budget: \(list).")
    }
    best.notes = notes
    return best
  }

  /// The plan with every batch (and every `tokens` total) divided by `divisor`, floor 1.
  /// A sweep over batch is divided by at most its smallest value, so its points stay
  /// distinct (16/32/64 → 1/2/4, and 1…64 stays as it is).
  public static func scaled(_ plan: BenchPlan, batchDivisor divisor: Int) -> BenchPlan {
    var p = plan
    p.experiments = plan.experiments.map { e in
      var e = e
      var seen = Set<Int>()
      let sweepsBatch = (e.xAxis == .batch || e.yAxis == .batch) && e.axes.batch.count > 1
      let d = sweepsBatch ? max(1, min(divisor, e.axes.batch.min() ?? 1)) : divisor
      e.axes.batch = e.axes.batch.map { max(1, $0 / d) }.filter { seen.insert($0).inserted }
      e.axes.tokens = e.axes.tokens.map { max(1, $0 / divisor) }
      if d > 1 { e.title += " — scaled to the budget: batch ÷\(d)" }
      return e
    }
    return p
  }
}
