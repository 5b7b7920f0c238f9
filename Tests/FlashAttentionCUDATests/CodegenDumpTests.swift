import FlashAttention
import Foundation
import Testing

@testable import FlashAttentionCUDA

/// Writes every generated kernel and the launch plans of a correctness grid and a timing grid
/// to `$FLASH_ATTN_KERNEL_DUMP` (when set), for `scripts/cuda/` to compile with NVRTC and to run
/// on a GPU before the Swift runtime can. Device addresses in the plans are placeholders
/// `role << 56 | offset` (roles in `scripts/cuda/plans.py`) that the script patches.
@Suite struct CodegenDumpTests {
  static let folder = ProcessInfo.processInfo.environment["FLASH_ATTN_KERNEL_DUMP"]

  enum Role: UInt64 { case q = 1, k, v, o, lse, dout, dq, dk, dv, scratch }
  static func address(_ r: Role) -> UInt64 { r.rawValue << 56 }

  struct Case {
    var problem: AttentionProblem
    var dtype: DType
    /// `bshd` (C order of (batch, seqlen, heads, headDim)) or `bhsd` (heads-major memory).
    var layout: String
    var deterministic: Bool
    var purpose: String
  }

  static func cases() throws -> [Case] {
    var out: [Case] = []
    // Correctness grid: every head dim, both dtypes, both masks, awkward lengths, GQA/MQA, strides.
    let shapes: [(Int, Int, Int, Int, Int)] = [  // batch, heads, kvHeads, seqlenQ, seqlenK
      (1, 1, 1, 1, 1), (2, 3, 3, 113, 203), (1, 2, 2, 203, 113), (1, 2, 1, 1, 239), (1, 2, 2, 239, 1),
      (1, 4, 2, 1023, 1024), (2, 4, 1, 128, 128), (1, 2, 2, 257, 64),
    ]
    for d in FlashAttentionKernels.supportedHeadDims {
      for (i, s) in shapes.enumerated() {
        for causal in [false, true] {
          // Keep the grid small: every shape for d 64 and 128, a rotating subset otherwise.
          if d != 64 && d != 128 && (i + (causal ? 1 : 0)) % 3 != 0 { continue }
          let p = try AttentionProblem(
            batch: s.0, queryHeads: s.1, keyValueHeads: s.2, seqlenQ: s.3, seqlenK: s.4, headDim: d,
            mask: causal ? .causal : .none)
          let dtype: DType = (i % 2 == 0) ? .bfloat16 : .float16
          out.append(Case(problem: p, dtype: dtype, layout: i % 3 == 1 ? "bhsd" : "bshd", deterministic: i % 4 == 3, purpose: "check"))
        }
      }
    }
    // A negative scale (allowed by AttentionProblem) and an odd scale.
    out.append(Case(problem: try AttentionProblem(batch: 1, queryHeads: 2, seqlenQ: 150, seqlenK: 90, headDim: 64, scale: -0.2), dtype: .bfloat16, layout: "bshd", deterministic: false, purpose: "check"))
    out.append(Case(problem: try AttentionProblem(batch: 1, queryHeads: 2, seqlenQ: 90, seqlenK: 150, headDim: 128, scale: 0.3, mask: .causal), dtype: .float16, layout: "bshd", deterministic: true, purpose: "check"))
    // Timing grid of the issue: bf16, headDim 128, 16 heads, batch × seqlen = 16k tokens.
    for seqlen in [2048, 4096, 8192, 16384] {
      for causal in [false, true] {
        let p = try AttentionProblem(
          batch: 16384 / seqlen, queryHeads: 16, seqlenQ: seqlen, headDim: 128, mask: causal ? .causal : .none)
        out.append(Case(problem: p, dtype: .bfloat16, layout: "bshd", deterministic: false, purpose: "time"))
      }
    }
    return out
  }

  static func strides(_ shape: TensorShape, _ layout: String) -> TensorStrides {
    layout == "bhsd" ? .headsMajor(shape) : .contiguous(shape)
  }

  static func launchJSON(_ l: KernelLaunch) -> [String: Any] {
    [
      "kernel": l.kernel.name, "entry": l.entryPoint,
      "grid": [l.grid.x, l.grid.y, l.grid.z], "block": [l.block.x, l.block.y, l.block.z],
      "smem": l.dynamicSharedMemoryBytes,
      "params": l.parameterBlock.map { String(format: "%02x", $0) }.joined(),
    ]
  }

  @Test func dumpKernelsAndPlans() throws {
    guard let folder = Self.folder else { return }
    let dir = URL(fileURLWithPath: folder)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    for arch in [GPUArch.sm80, .sm90a] {
      let archDir = dir.appendingPathComponent(arch.rawValue)
      try FileManager.default.createDirectory(at: archDir, withIntermediateDirectories: true)
      for k in FlashAttentionKernels.catalog(arch: arch) {
        try k.source.write(to: archDir.appendingPathComponent(k.name + ".cu"), atomically: true, encoding: .utf8)
      }
    }
    var plans: [[String: Any]] = []
    for (n, c) in try Self.cases().enumerated() {
      let p = c.problem
      let qs = Self.strides(p.queryShape, c.layout), kvs = Self.strides(p.keyValueShape, c.layout)
      func ref(_ r: Role, _ s: TensorStrides) -> DeviceTensorRef { DeviceTensorRef(address: Self.address(r), strides: s) }
      let fwd = try FlashAttentionKernels.forward(
        problem: p, dtype: c.dtype, arch: .sm90a, q: ref(.q, qs), k: ref(.k, kvs), v: ref(.v, kvs),
        output: ref(.o, qs), lse: Self.address(.lse))
      let bwd = try FlashAttentionKernels.backward(
        problem: p, dtype: c.dtype, arch: .sm90a, q: ref(.q, qs), k: ref(.k, kvs), v: ref(.v, kvs),
        output: ref(.o, qs), dOutput: ref(.dout, qs), lse: Self.address(.lse), dq: ref(.dq, qs),
        dk: ref(.dk, kvs), dv: ref(.dv, kvs), scratch: Self.address(.scratch), deterministic: c.deterministic)
      // Tuning: alternative block shapes of the timed shapes, timed side by side on the device.
      var variants: [[String: Any]] = []
      if c.purpose == "time" {
        let kd = KernelDType(c.dtype)!
        let causal = p.mask == .causal
        let dqReductionVariants = [
          // dQ through 4-float reductions (the standard plan uses 2) and through scalar atomics.
          BackwardKernelConfig(dtype: kd, headDim: 128, blockM: 64, blockN: 128, warps: 8, sKeys: 32, kvKeys: 32, dqRows: 64, queryStages: 2, causal: causal, atomicDQ: true, arch: .sm90a, dqReductionWidth: 4),
          BackwardKernelConfig(dtype: kd, headDim: 128, blockM: 64, blockN: 128, warps: 8, sKeys: 32, kvKeys: 32, dqRows: 64, queryStages: 2, causal: causal, atomicDQ: true, arch: .sm90a, dqReductionWidth: 1),
        ]
        for b in dqReductionVariants {
          precondition(b.isValid)
          try b.source.write(to: dir.appendingPathComponent("sm_90a").appendingPathComponent(b.name + ".cu"), atomically: true, encoding: .utf8)
          let s = BackwardScratch(problem: p, base: Self.address(.scratch), deterministic: false)
          var l = bwd
          l[1] = b.launch(problem: p, q: ref(.q, qs), k: ref(.k, kvs), v: ref(.v, kvs), dOutput: ref(.dout, qs), dk: ref(.dk, kvs), dv: ref(.dv, kvs), scratch: s)
          variants.append(["label": b.name, "pass": "backward", "launches": l.map(Self.launchJSON)])
        }
      }
      plans.append([
        "variants": variants,
        "id": n, "purpose": c.purpose, "batch": p.batch, "heads": p.queryHeads, "kv_heads": p.keyValueHeads,
        "seqlen_q": p.seqlenQ, "seqlen_k": p.seqlenK, "head_dim": p.headDim, "scale": Double(p.scale),
        "causal": p.mask == .causal, "dtype": c.dtype.shortName, "layout": c.layout,
        "deterministic": c.deterministic,
        "scratch_bytes": FlashAttentionKernels.backwardScratchBytes(problem: p, arch: .sm90a, deterministic: c.deterministic),
        "forward": fwd.map(Self.launchJSON), "backward": bwd.map(Self.launchJSON),
      ])
    }
    let data = try JSONSerialization.data(withJSONObject: plans, options: [.prettyPrinted, .sortedKeys])
    try data.write(to: dir.appendingPathComponent("plans.json"))
  }
}
