import FlashAttention
import Foundation
import Testing

@testable import FlashAttentionCUDA

@Suite struct CodegenKernelTests {
  @Test(arguments: [GPUArch.sm80, .sm90a])
  func catalogIsCompleteAndSelfContained(arch: GPUArch) {
    let kernels = FlashAttentionKernels.catalog(arch: arch)
    // 2 dtypes × 6 head dims × (preprocess + convert + 2 masks × (forward + 2 backward + dQ)).
    #expect(kernels.count == 2 * 6 * 10)

    #expect(Set(kernels.map(\.name)).count == kernels.count, "kernel names must be unique")
    for k in kernels {
      #expect(!k.source.contains("#include"), "\(k.name) includes a header")
      #expect(k.arch == arch)
      for e in k.entryPoints {
        #expect(k.source.contains(") \(e)(const Params p)"), "\(k.name) lacks entry point \(e)")
      }
    }
  }

  @Test(arguments: [GPUArch.sm80, .sm90a])
  func everyStandardConfigIsValidAndFitsSharedMemory(arch: GPUArch) {
    let limit = arch.maxSharedMemoryPerBlock
    for dtype in KernelDType.allCases {
      for d in FlashAttentionKernels.supportedHeadDims {
        for causal in [false, true] {
          let f = ForwardKernelConfig.standard(dtype: dtype, headDim: d, causal: causal, arch: arch)
          #expect(f.isValid, "\(f.name)")
          #expect(f.sharedMemoryBytes <= limit, "\(f.name): \(f.sharedMemoryBytes) bytes")
          for atomic in [false, true] {
            let b = BackwardKernelConfig.standard(dtype: dtype, headDim: d, causal: causal, atomicDQ: atomic, arch: arch)
            #expect(b.isValid, "\(b.name)")
            #expect(b.sharedMemoryBytes <= limit, "\(b.name): \(b.sharedMemoryBytes) bytes")
          }
          let q = BackwardDQKernelConfig.standard(dtype: dtype, headDim: d, causal: causal, arch: arch)
          #expect(q.isValid, "\(q.name)")
          #expect(q.sharedMemoryBytes <= limit, "\(q.name): \(q.sharedMemoryBytes) bytes")
        }
      }
    }
  }

  @Test func dQReductionsAreVectorOnHopperAndScalarBefore() {
    let hopper = BackwardKernelConfig.standard(dtype: .bf16, headDim: 128, causal: false, atomicDQ: true, arch: .sm90a)
    let ampere = BackwardKernelConfig.standard(dtype: .bf16, headDim: 128, causal: false, atomicDQ: true, arch: .sm80)
    #expect(hopper.source.contains("red.global.add.v2.f32"))
    #expect(!ampere.source.contains("red.global.add"))
    #expect(ampere.source.contains("atomicAdd(p, a)"))
    // The deterministic mode has no dQ reductions at all (a separate kernel computes dQ).
    let det = BackwardKernelConfig.standard(dtype: .bf16, headDim: 128, causal: false, atomicDQ: false, arch: .sm90a)
    #expect(det.source.contains("constexpr bool ATOMIC_DQ = false;"))
  }

  @Test func headDimsThatDoNotFitAnArchAreRefusedByName() throws {
    // sm_86 has 99 KB per block: the large head dims' backward does not fit.
    let p = try AttentionProblem(batch: 1, queryHeads: 1, seqlenQ: 8, headDim: 256)
    #expect(!FlashAttentionKernels.supports(problem: p, dtype: .bfloat16, arch: .sm86))
    #expect(FlashAttentionKernels.supports(problem: p, dtype: .bfloat16, arch: .sm80))
    #expect(FlashAttentionKernels.catalog(arch: .sm86).count < FlashAttentionKernels.catalog(arch: .sm80).count)
  }

  @Test func sourceDependsOnDescriptorNotOnSequenceLengths() throws {
    let a = try AttentionProblem(batch: 1, queryHeads: 2, seqlenQ: 100, seqlenK: 300, headDim: 64)
    let b = try AttentionProblem(batch: 3, queryHeads: 2, seqlenQ: 7000, seqlenK: 5, headDim: 64)
    let t = DeviceTensorRef(address: 0x1000, strides: TensorStrides(batch: 8, seqlen: 8, head: 8))
    let la = try FlashAttentionKernels.forward(problem: a, dtype: .bfloat16, arch: .sm80, q: t, k: t, v: t, output: t, lse: 0x2000)
    let lb = try FlashAttentionKernels.forward(problem: b, dtype: .bfloat16, arch: .sm80, q: t, k: t, v: t, output: t, lse: 0x2000)
    #expect(la[0].kernel == lb[0].kernel)
    #expect(la[0].parameterBlock != lb[0].parameterBlock)
  }

  @Test func forwardPlanMatchesTheKernelStruct() throws {
    let p = try AttentionProblem(batch: 2, queryHeads: 8, keyValueHeads: 2, seqlenQ: 300, seqlenK: 500, headDim: 128, mask: .causal)
    let q = DeviceTensorRef(address: 0x10000, strides: .contiguous(p.queryShape))
    let kv = DeviceTensorRef(address: 0x20000, strides: .contiguous(p.keyValueShape))
    let l = try FlashAttentionKernels.forward(problem: p, dtype: .float16, arch: .sm90a, q: q, k: kv, v: kv, output: q, lse: 0x30000)
    #expect(l.count == 1)
    let launch = l[0]
    // Causal: (heads, batch, query blocks), heaviest blocks first inside the kernel.
    #expect(launch.grid == Dim3(8, 2, 3))
    #expect(launch.block == Dim3(128))
    // 5 pointers, 12 int64 strides, 6 ints, 1 float -> 164 bytes, padded to 168.
    #expect(launch.parameterBlock.count == 168)
    #expect(launch.kernel.source.contains("constexpr bool CAUSAL = true;"))
    #expect(launch.kernel.source.contains("f16.f16.f32"))
  }

  @Test func backwardPlansInitialiseTheirOwnAccumulators() throws {
    let p = try AttentionProblem(batch: 1, queryHeads: 4, keyValueHeads: 1, seqlenQ: 77, seqlenK: 130, headDim: 64)
    let t = DeviceTensorRef(address: 0x10000, strides: .contiguous(p.queryShape))
    let kv = DeviceTensorRef(address: 0x20000, strides: .contiguous(p.keyValueShape))
    for deterministic in [false, true] {
      let bytes = FlashAttentionKernels.backwardScratchBytes(problem: p, arch: .sm80, deterministic: deterministic)
      #expect(bytes == 2 * 4 * 128 * 4 + (deterministic ? 0 : 4 * 128 * 64 * 4))
      let l = try FlashAttentionKernels.backward(
        problem: p, dtype: .bfloat16, arch: .sm80, q: t, k: kv, v: kv, output: t, dOutput: t, lse: 0x40000,
        dq: t, dk: kv, dv: kv, scratch: 0x50000, deterministic: deterministic)
      #expect(l.map(\.entryPoint) == ["flash_bwd_preprocess", "flash_bwd_dkdv", deterministic ? "flash_bwd_dq" : "flash_bwd_dq_convert"])
      // The preprocess zeroes the dQ accumulator exactly when there is one: `zero_dq`, the
      // last int of its struct, after 6 pointers, 6 int64 strides and 4 ints.
      let pre = l[0].parameterBlock
      #expect(pre.count == 120)
      #expect(pre[112] == (deterministic ? 0 : 1))
      // dK/dV: one CTA per key block and kv head (the group's query heads are summed inside).
      #expect(l[1].grid == Dim3(2, 1, 1))
    }
  }

  @Test func unsupportedInputsAreNamed() throws {
    let t = DeviceTensorRef(address: 0x1000, strides: TensorStrides(batch: 4096, seqlen: 64, head: 64))
    let p40 = try AttentionProblem(batch: 1, queryHeads: 1, seqlenQ: 8, headDim: 40)
    #expect(throws: AttentionError.unsupported(argument: "headDim", value: "40", supported: "32, 64, 96, 128, 192, 256 on the CUDA kernels")) {
      _ = try FlashAttentionKernels.forward(problem: p40, dtype: .bfloat16, arch: .sm80, q: t, k: t, v: t, output: t, lse: 0)
    }
    let p64 = try AttentionProblem(batch: 1, queryHeads: 1, seqlenQ: 8, headDim: 64)
    #expect(!FlashAttentionKernels.supports(problem: p64, dtype: .float32, arch: .sm80))
    #expect(FlashAttentionKernels.supports(problem: p64, dtype: .float16, arch: .sm80))
    let odd = DeviceTensorRef(address: 0x1000, strides: TensorStrides(batch: 4096, seqlen: 65, head: 64))
    do {
      _ = try FlashAttentionKernels.forward(problem: p64, dtype: .bfloat16, arch: .sm80, q: t, k: odd, v: t, output: t, lse: 0)
      Issue.record("an odd stride was accepted")
    } catch {
      guard case .unsupported(let argument, _, _) = error else { Issue.record("wrong error \(error)"); return }
      #expect(argument == "k")
    }
  }
}
