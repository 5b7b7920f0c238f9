import FlashAttention
import FlashAttentionBench
import Testing

@Suite struct MeasurementTests {
  let settings = MeasureSettings(warmup: 2, repeats: 4)

  @Test func roundRobinInterleavesImplementations() throws {
    let backend = FakeBackend()
    let c = BenchCase(batch: 1, heads: 2, seqlenQ: 64, headDim: 16)
    let rows = CaseMeasurement.measure(c, implementations: [.flash, .standard], experiments: ["e"], backend: backend, settings: settings)
    #expect(rows.map(\.implementation) == ["flash", "standard"])
    // Two warm-up calls, then the 4 rounds alternate and the starting one rotates.
    let log = backend.log.withLock { $0 }
    #expect(log == ["flash", "standard", "flash", "standard", "standard", "flash", "flash", "standard", "standard", "flash"])
    for r in rows {
      #expect(r.status == .ok)
      #expect(r.experiments == ["e"])
      #expect(r.device == "fake device")
      #expect(r.maxError == Double(FakeBackend.difference))
      #expect(r.peakMemoryBytes != nil)
    }
    let flash = rows[0]
    let ms = c.flops / 1e9
    #expect(flash.minMs == ms)
    #expect(abs(flash.maxMs! - ms * 1.1) < 1e-12)
    #expect(abs(flash.tflops! - c.flops / (flash.medianMs! * 1e-3) / 1e12) < 1e-9)
  }

  @Test func outOfMemoryIsARowAndTheSweepContinues() throws {
    let backend = FakeBackend(oomSeqlen: 256)
    var axes = SweepAxes()
    axes.seqlen = [128, 256, 512]
    axes.heads = [2]
    axes.headDim = [16]
    let plan = BenchPlan(
      experiments: [Experiment(name: "s", title: "s", xAxis: .seqlen, axes: axes)], implementations: [.flash, .standard])
    let runner = BenchRunner(backend: backend, settings: settings)
    var seen = 0
    runner.onRecords = { seen += $0.count }
    let records = try runner.run(plan, cost: nil)
    #expect(records.count == 6)
    #expect(seen == 6)
    let standard = records.filter { $0.implementation == "standard" }
    #expect(standard.map(\.status) == [.ok, .oom, .oom])
    #expect(standard[1].note?.contains("out of memory") == true)
    #expect(standard[1].medianMs == nil)
    let flash = records.filter { $0.implementation == "flash" }
    #expect(flash.allSatisfy { $0.status == .ok && $0.medianMs != nil })
    // No standard to compare with: no error figure rather than a made-up one.
    #expect(flash[1].maxError == nil)
    #expect(flash[0].maxError == Double(FakeBackend.difference))
  }

  @Test func unsupportedShapesAndDTypes() {
    let backend = FakeBackend()
    let odd = BenchCase(batch: 1, heads: 1, seqlenQ: 8, headDim: 3)
    let rows = CaseMeasurement.measure(odd, implementations: [.flash], experiments: [], backend: backend, settings: settings)
    #expect(rows.map(\.status) == [.unsupported])
    let bf = BenchCase(batch: 1, heads: 1, seqlenQ: 8, headDim: 8, dtype: .bfloat16)
    #expect(CaseMeasurement.measure(bf, implementations: [.standard], experiments: [], backend: backend, settings: settings)
      .map(\.status) == [.unsupported])
    // An invalid shape is an error row, not a crash.
    let bad = BenchCase(batch: 1, heads: 6, kvHeads: 4, seqlenQ: 8, headDim: 8)
    #expect(CaseMeasurement.measure(bad, implementations: [.flash], experiments: [], backend: backend, settings: settings)
      .map(\.status) == [.error])
  }

  @Test func hostMemoryGuardRecordsOOMWithoutAllocating() {
    let backend = FakeBackend()
    let c = BenchCase(batch: 64, heads: 32, seqlenQ: 2048, headDim: 64)
    let limited = MeasureSettings(warmup: 0, repeats: 1, hostMemoryLimitBytes: 1 << 30)
    let rows = CaseMeasurement.measure(c, implementations: [.flash, .standard], experiments: [], backend: backend, settings: limited)
    #expect(rows.map(\.status) == [.ok, .oom])
    #expect(!backend.log.withLock { $0 }.contains("standard"))
  }

  @Test func budgetPlannerScalesBatchesThenSkips() throws {
    let plan = BenchPlan(experiments: Preset.seed001.experiments(dtype: .float32), implementations: [.flash, .standard])
    // 10 GFLOP/s everywhere: the full preset takes hours.
    let cost = CostModel(
      rates: ["flash|forward": 1e10, "standard|forward": 1e10], prepareSecondsPerElement: 1e-9, runsPerCase: 6)
    let full = try plan.items().reduce(0) { $0 + cost.seconds($1.benchCase, implementations: $1.implementations) }
    #expect(full > 600)
    let fitted = try BudgetPlanner.fit(plan, budgetSeconds: 60, cost: cost)
    let items = try fitted.items()
    let total = items.reduce(0) { $0 + cost.seconds($1.benchCase, implementations: $1.implementations) }
    #expect(total <= 60)
    #expect(!items.isEmpty)
    #expect(fitted.notes.contains { $0.contains("batch divided by") })
    // The grid keeps three distinct batches, scaled alike (16/32/64 → a, 2a, 4a).
    let grid = try #require(fitted.experiments.first { $0.name == "batch-x-seqlen" })
    let b = grid.axes.batch
    #expect(b.count == 3 && b[1] == 2 * b[0] && b[2] == 4 * b[0])
    // A budget large enough changes nothing.
    let roomy = try BudgetPlanner.fit(plan, budgetSeconds: full * 2, cost: cost)
    #expect(roomy.notes.isEmpty)
    #expect(try roomy.items().count == plan.items().count)
  }

  @Test func budgetPlannerSaysWhatItSkipped() throws {
    let plan = BenchPlan(experiments: Preset.paper.experiments(dtype: .float32), implementations: [.flash, .standard])
    let cost = CostModel(rates: ["flash|forward": 5e10, "standard|forward": 5e10], prepareSecondsPerElement: 1e-9, runsPerCase: 6)
    let fitted = try BudgetPlanner.fit(plan, budgetSeconds: 30, cost: cost)
    #expect(!fitted.skipped.isEmpty)
    #expect(fitted.notes.contains { $0.contains("Skipped") && $0.contains("N16384") })
    #expect(try fitted.items().allSatisfy { !fitted.skipped.contains($0.benchCase) })
  }

  @Test func runnerStopsWhenOutOfTime() throws {
    let backend = FakeBackend()
    var axes = SweepAxes()
    axes.seqlen = [64, 128, 256]
    let plan = BenchPlan(experiments: [Experiment(name: "s", title: "s", xAxis: .seqlen, axes: axes)], implementations: [.flash])
    // A cost model claiming each configuration takes hours to prepare: only the first runs
    // (the first always runs, so a run is never empty).
    let cost = CostModel(rates: ["flash|forward": 1e12], prepareSecondsPerElement: 1000, runsPerCase: 1)
    let runner = BenchRunner(backend: backend, settings: settings, maxSeconds: 10)
    let records = try runner.run(plan, cost: cost)
    #expect(records.count == 1)
    #expect(runner.notes.first?.contains("skipped 2 configuration") == true)
  }
}

@Suite struct DeviceMemoryTests {
  @Test func aDeviceBackendMeasuresEachImplementationsMemoryAlone() {
    let backend = FakeBackend(kind: "cuda")
    let c = BenchCase(batch: 1, heads: 2, seqlenQ: 64, headDim: 16)
    let rows = CaseMeasurement.measure(
      c, implementations: [.flash, .standard], experiments: [], backend: backend, settings: MeasureSettings(warmup: 1, repeats: 2))
    // Warm-up + 2 rounds of both, then one run each alone for the memory figure.
    #expect(backend.log.withLock { $0 }.count == 2 + 4 + 2)
    #expect(rows.map(\.peakMemoryBytes) == [64 * 2 * 16 * 4, 64 * 64 * 2 * 4])
  }
}
