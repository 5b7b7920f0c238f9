import FlashAttention

/// Named sweeps: the seed reports' experiments, the FlashAttention papers' grid, and a
/// seconds-long smoke test. Shapes are the reports' own; on a CPU the `BudgetPlanner`
/// scales them down to `--max-seconds` and says what it changed.
public enum Preset: String, CaseIterable, Sendable {
  case smoke
  case seed000 = "seed-000"
  case seed001 = "seed-001"
  case seed002 = "seed-002"
  case paper

  public var summary: String {
    switch self {
    case .smoke: "a few seconds: flash vs standard, forward and backward, tiny shapes (CI)"
    case .seed000: "seed 000: flash vs standard over seqlen; embedding dim and heads sweeps"
    case .seed001: "seed 001: batch 16/32/64 × seqlen 512/1024/2048; heads, emb dim, causal sweeps"
    case .seed002: "seed 002: seqlen, batch 1–64, heads, emb 64–2048, headDim 16–128, fwd vs bwd, heatmap"
    case .paper: "FlashAttention papers: seqlen 512–16k, batch × seqlen = 16k, hidden 2048, headDim 64/128"
    }
  }

  /// The experiments of this preset with every case stored as `dtype`.
  public func experiments(dtype: DType) -> [Experiment] {
    func axes(
      batch: [Int], seqlen: [Int], heads: [Int], headDim: [Int], causal: [Bool] = [false],
      pass: [AttentionPass] = [.forward]
    ) -> SweepAxes {
      var a = SweepAxes()
      a.batch = batch
      a.seqlen = seqlen
      a.heads = heads
      a.headDim = headDim
      a.causal = causal
      a.pass = pass
      a.dtype = [dtype]
      return a
    }
    switch self {
    case .smoke:
      // Both implementations everywhere, so every row has its agreement figure.
      var grid = axes(batch: [1, 2], seqlen: [64, 128], heads: [2], headDim: [64])
      grid.causal = [true]
      return [
        Experiment(
          name: "seqlen", title: "Flash vs standard, forward and backward (smoke)", xAxis: .seqlen,
          axes: axes(batch: [1], seqlen: [128, 256], heads: [2], headDim: [64], causal: [false, true],
                     pass: [.forward, .backward])),
        Experiment(
          name: "batch-x-seqlen", title: "Batch × seqlen grid (smoke, causal)", xAxis: .seqlen,
          yAxis: .batch, axes: grid),
      ]

    case .seed000:
      // Lab 5: FLASH2 vs PyTorch; then emb dims, heads and seqlen modified one at a time.
      // Base: batch 16, 16 heads, seqlen 1024, headDim 64 (emb 1024), non-causal.
      var emb = axes(batch: [16], seqlen: [1024], heads: [16], headDim: [64])
      emb.embeddingDim = [256, 512, 1024, 2048, 4096]
      var heads = axes(batch: [16], seqlen: [1024], heads: [4, 8, 16, 32, 64], headDim: [64])
      heads.embeddingDim = [1024]
      return [
        Experiment(
          name: "seqlen", title: "Flash vs standard over sequence length (batch 16, 16 heads, emb 1024)",
          xAxis: .seqlen, axes: axes(batch: [16], seqlen: [256, 512, 1024, 2048, 4096], heads: [16], headDim: [64])),
        Experiment(
          name: "emb", title: "Embedding dim (16 heads, batch 16, seqlen 1024)", xAxis: .embeddingDim, axes: emb),
        Experiment(
          name: "heads", title: "Number of heads at emb 1024 (batch 16, seqlen 1024)", xAxis: .heads, axes: heads),
      ]

    case .seed001:
      // Lab 5 (second report). Defaults: batch 32, seqlen 1024, 32 heads, emb 2048
      // (headDim 64), non-causal — the values its tables hold fixed.
      var grid = axes(batch: [16, 32, 64], seqlen: [512, 1024, 2048], heads: [32], headDim: [64])
      grid.pass = [.forward]
      var heads = axes(batch: [32], seqlen: [1024], heads: [8, 16, 32], headDim: [64])
      heads.embeddingDim = [2048]
      var emb = axes(batch: [32], seqlen: [1024], heads: [16], headDim: [64])
      emb.embeddingDim = [1024, 2048, 4096]
      return [
        Experiment(
          name: "batch-x-seqlen", title: "Flash vs standard: batch 16/32/64 × seqlen 512/1024/2048 (32 heads, emb 2048)",
          xAxis: .seqlen, yAxis: .batch, axes: grid, charts: [.time, .tflops, .speedup, .memory, .heatmap]),
        Experiment(
          name: "batch", title: "Batch size (seqlen 1024, 32 heads, emb 2048)", xAxis: .batch,
          axes: axes(batch: [16, 32, 64], seqlen: [1024], heads: [32], headDim: [64])),
        Experiment(
          name: "seqlen", title: "Sequence length (batch 32, 32 heads, emb 2048)", xAxis: .seqlen,
          axes: axes(batch: [32], seqlen: [512, 1024, 2048], heads: [32], headDim: [64])),
        Experiment(
          name: "heads", title: "Number of heads at emb 2048 (batch 32, seqlen 1024)", xAxis: .heads, axes: heads),
        Experiment(
          name: "emb", title: "Embedding dim (16 heads, batch 32, seqlen 1024)", xAxis: .embeddingDim, axes: emb),
        Experiment(
          name: "causal", title: "Causal attention (batch 32, seqlen 1024, 32 heads, emb 2048)", xAxis: .causal,
          axes: axes(batch: [32], seqlen: [1024], heads: [32], headDim: [64], causal: [false, true])),
      ]

    case .seed002:
      // Lab 6: causal, batch 16, seqlen 512, 8 heads, headDim 64 unless a figure says otherwise.
      var emb = axes(batch: [16], seqlen: [512], heads: [8], headDim: [64], causal: [true])
      emb.embeddingDim = [64, 128, 256, 512, 1024, 2048]
      return [
        Experiment(
          name: "seqlen", title: "Sequence length (causal, batch 16, 8 heads, headDim 64) — Figures 1, 2, 4, 8",
          xAxis: .seqlen,
          axes: axes(batch: [16], seqlen: [128, 256, 512, 1024, 2048], heads: [8], headDim: [64], causal: [true])),
        Experiment(
          name: "batch", title: "Batch scaling (causal, seqlen 512) — Figure 3", xAxis: .batch,
          axes: axes(batch: [1, 2, 4, 8, 16, 32, 64], seqlen: [512], heads: [8], headDim: [64], causal: [true]),
          implementations: [.flash], charts: [.time, .tflops]),
        Experiment(
          name: "causal", title: "Causal vs non-causal (batch 16, 8 heads) — Figure 5", xAxis: .seqlen,
          axes: axes(batch: [16], seqlen: [128, 256, 512, 1024, 2048], heads: [8], headDim: [64], causal: [false, true]),
          implementations: [.flash], charts: [.time, .tflops]),
        Experiment(
          name: "heads", title: "Number of heads (causal, batch 16, seqlen 512, headDim 64) — Figure 6", xAxis: .heads,
          axes: axes(batch: [16], seqlen: [512], heads: [8, 16, 24, 32, 48, 64], headDim: [64], causal: [true]),
          implementations: [.flash], charts: [.tflops, .time]),
        Experiment(
          name: "emb", title: "Embedding dim (causal, batch 16, seqlen 512, 8 heads) — Figure 7", xAxis: .embeddingDim,
          axes: emb, implementations: [.flash], charts: [.time, .tflops]),
        Experiment(
          name: "passes", title: "Forward vs backward (causal, 8 heads) — Figure 9", xAxis: .seqlen, yAxis: .batch,
          axes: axes(batch: [4, 16], seqlen: [256, 512, 1024], heads: [8], headDim: [64], causal: [true],
                     pass: [.forward, .backward]),
          implementations: [.flash], charts: [.passes]),
        Experiment(
          name: "head-dim", title: "Head dim (causal, batch 16, seqlen 512, 8 heads) — Figure 10", xAxis: .headDim,
          axes: axes(batch: [16], seqlen: [512], heads: [8], headDim: [16, 32, 64, 128], causal: [true]),
          implementations: [.flash], charts: [.tflops, .time]),
        Experiment(
          name: "heatmap", title: "Throughput heatmap, batch × seqlen (flash, causal) — Figure 11", xAxis: .seqlen,
          yAxis: .batch,
          axes: axes(batch: [1, 2, 4, 8, 16], seqlen: [128, 256, 512, 1024, 2048], heads: [8], headDim: [64],
                     causal: [true]),
          implementations: [.flash], charts: [.heatmap]),
        Experiment(
          name: "efficiency", title: "Efficiency summary, flash vs standard (causal, batch 16, seqlen 512) — Figure 12",
          xAxis: .pass,
          axes: axes(batch: [16], seqlen: [512], heads: [8], headDim: [64], causal: [true], pass: [.forward, .backward]),
          charts: [.tflops, .time]),
      ]

    case .paper:
      // FlashAttention-2/3 papers: batch × seqlen = 16k tokens, hidden 2048 (32 heads of
      // 64 or 16 heads of 128), causal and not, forward and forward + backward.
      var out: [Experiment] = []
      for passes in [AttentionPass.forward, .forwardBackward] {
        for causal in [false, true] {
          for (heads, d) in [(32, 64), (16, 128)] {
            var a = axes(batch: [1], seqlen: [512, 1024, 2048, 4096, 8192, 16384], heads: [heads], headDim: [d],
                         causal: [causal], pass: [passes])
            a.tokens = 16384
            let passName = passes == .forward ? "forward" : "fwd+bwd"
            out.append(
              Experiment(
                name: "\(passName == "forward" ? "fwd" : "fwdbwd")-\(causal ? "causal" : "full")-d\(d)",
                title: "\(passName), \(causal ? "causal" : "non-causal"), headDim \(d) (hidden 2048, batch × seqlen = 16k)",
                xAxis: .seqlen, axes: a, charts: [.tflops, .speedup, .time, .memory]))
          }
        }
      }
      return out
    }
  }
}
