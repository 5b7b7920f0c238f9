import FlashAttention
import FlashAttentionBench
import Testing

@Suite struct SweepTests {
  @Test func expansionIsTheCartesianProduct() throws {
    var a = SweepAxes()
    a.seqlen = [128, 256, 512]
    a.batch = [1, 4]
    a.heads = [8]
    a.headDim = [32, 64]
    a.causal = [false, true]
    a.pass = [.forward, .backward]
    let cases = try a.expand()
    #expect(cases.count == 3 * 2 * 2 * 2 * 2)
    #expect(Set(cases).count == cases.count)
    #expect(cases.allSatisfy { $0.seqlenK == $0.seqlenQ && $0.kvHeads == $0.heads })
    #expect(Set(cases.map(\.seqlenQ)) == [128, 256, 512])
  }

  @Test func embeddingDimSplitsIntoHeadsAndHeadDim() throws {
    var a = SweepAxes()
    a.heads = [16]
    a.embeddingDim = [1024, 2048, 4096]
    #expect(try a.expand().map(\.headDim) == [64, 128, 256])
    #expect(try a.expand().allSatisfy { $0.embeddingDim == $0.heads * $0.headDim })
    a.embeddingSplit = .fixHeadDim
    a.headDim = [64]
    #expect(try a.expand().map(\.heads) == [16, 32, 64])
    a.embeddingDim = [100]
    #expect(throws: AttentionError.self) { try a.expand() }
  }

  @Test func tokensFixBatchTimesSeqlen() throws {
    var a = SweepAxes()
    a.seqlen = [512, 2048, 16384, 32768]
    a.tokens = 16384
    #expect(try a.expand().map(\.batch) == [32, 8, 1, 1])
  }

  @Test func emptyAxisAndKVHeads() throws {
    var a = SweepAxes()
    a.batch = []
    #expect(throws: AttentionError.self) { try a.expand() }
    var g = SweepAxes()
    g.heads = [8]
    g.kvHeads = [2, 1]
    g.seqlenK = [100]
    let cases = try g.expand()
    #expect(cases.map(\.kvHeads) == [2, 1])
    #expect(cases.allSatisfy { $0.seqlenK == 100 && $0.seqlenQ == 512 })
  }

  @Test func flopCounting() throws {
    let c = BenchCase(batch: 2, heads: 4, seqlenQ: 100, headDim: 32)
    #expect(c.flops == 4 * 2 * 4 * 100 * 100 * 32)
    var causal = c
    causal.causal = true
    // Exact visible pairs: N(N+1)/2 when seqlenQ = seqlenK.
    #expect(causal.flops == 4 * 2 * 4 * (100 * 101 / 2) * 32)
    #expect(c.with(pass: .backward).flops == 2.5 * c.flops)
    #expect(c.with(pass: .forwardBackward).flops == 3.5 * c.flops)
    var gqa = BenchCase(batch: 1, heads: 8, kvHeads: 2, seqlenQ: 64, seqlenK: 96, headDim: 16)
    #expect(gqa.flops == 4 * 8 * 64 * 96 * 16)  // counted over query heads
    gqa.causal = true
    // Bottom-right causal with seqlenK > seqlenQ: row i sees i + 33 keys.
    #expect(gqa.flops == 4 * 8 * 16 * Double((0..<64).reduce(0) { $0 + $1 + 33 }))
  }

  @Test func tflopsFromMedian() {
    var r = BenchRecord(implementation: .flash, device: "d", benchCase: BenchCase(batch: 1, heads: 1, seqlenQ: 8, headDim: 8), status: .ok)
    r.setTimes([3, 1, 2, 10], flops: 2e12)
    #expect(r.medianMs == 2.5)
    #expect(r.minMs == 1)
    #expect(r.maxMs == 10)
    #expect(abs(r.tflops! - 2e12 / 2.5e-3 / 1e12) < 1e-9)
  }
}

@Suite struct PresetTests {
  @Test(arguments: Preset.allCases)
  func everyPresetExpands(preset: Preset) throws {
    let experiments = preset.experiments(dtype: .float32)
    #expect(!experiments.isEmpty)
    #expect(Set(experiments.map(\.name)).count == experiments.count)
    let plan = BenchPlan(experiments: experiments, implementations: [.flash, .standard])
    let items = try plan.items()
    #expect(!items.isEmpty)
    for item in items {
      #expect(throws: Never.self) { try item.benchCase.problem() }
      #expect(item.benchCase.dtype == .float32)
    }
    // bf16 for GPUs: every case carries it.
    #expect(try preset.experiments(dtype: .bfloat16).flatMap { try $0.cases() }.allSatisfy { $0.dtype == .bfloat16 })
  }

  @Test func seed001HasTheReportGrid() throws {
    let e = Preset.seed001.experiments(dtype: .float16)
    let grid = try #require(e.first { $0.name == "batch-x-seqlen" })
    let cases = try grid.cases()
    #expect(Set(cases.map(\.batch)) == [16, 32, 64])
    #expect(Set(cases.map(\.seqlenQ)) == [512, 1024, 2048])
    #expect(grid.yAxis == .batch)
    let heads = try #require(e.first { $0.name == "heads" })
    #expect(try heads.cases().map { $0.heads * $0.headDim } == [2048, 2048, 2048])
    let emb = try #require(e.first { $0.name == "emb" })
    #expect(try emb.cases().map(\.embeddingDim) == [1024, 2048, 4096])
    #expect(try emb.cases().allSatisfy { $0.heads == 16 })
    #expect(try e.first { $0.name == "causal" }!.cases().map(\.causal) == [false, true])
  }

  @Test func paperGridIs16kTokensHidden2048() throws {
    let cases = try Preset.paper.experiments(dtype: .bfloat16).flatMap { try $0.cases() }
    #expect(cases.allSatisfy { $0.batch * $0.seqlenQ == 16384 && $0.heads * $0.headDim == 2048 })
    #expect(Set(cases.map(\.seqlenQ)) == [512, 1024, 2048, 4096, 8192, 16384])
    #expect(Set(cases.map(\.headDim)) == [64, 128])
    #expect(Set(cases.map(\.causal)) == [false, true])
    #expect(Set(cases.map(\.pass)) == [.forward, .forwardBackward])
  }

  @Test func smokeHasFlashAndStandardForwardAndBackward() throws {
    let plan = BenchPlan(experiments: Preset.smoke.experiments(dtype: .float32), implementations: [.flash, .standard])
    let items = try plan.items()
    for pass in [AttentionPass.forward, .backward] {
      #expect(items.contains { $0.benchCase.pass == pass && $0.implementations == [.flash, .standard] })
    }
    // A smoke run must stay tiny.
    #expect(items.allSatisfy { $0.benchCase.flops < 1e9 })
  }

  @Test func seed002SharedConfigurationsAreMeasuredOnce() throws {
    let plan = BenchPlan(experiments: Preset.seed002.experiments(dtype: .float32), implementations: [.flash, .standard])
    let items = try plan.items()
    #expect(Set(items.map(\.benchCase)).count == items.count)
    // B16 N512 causal H8 D64 forward belongs to several experiments and gets both
    // implementations because `seqlen` wants standard.
    let shared = try #require(items.first {
      $0.benchCase == BenchCase(batch: 16, heads: 8, seqlenQ: 512, headDim: 64, causal: true)
    })
    #expect(shared.experiments.count >= 4)
    #expect(shared.implementations == [.flash, .standard])
  }
}
