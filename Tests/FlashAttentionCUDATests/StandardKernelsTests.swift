import Testing
import FlashAttention
@testable import FlashAttentionCUDA

@Suite struct StandardKernelsTests {
  @Test func sourceIsSelfContained() {
    for dtype in [DType.float16, .bfloat16] {
      let k = StandardKernels.kernel(dtype: dtype, arch: .sm80)
      #expect(!k.source.contains("#include"))
      for entry in k.entryPoints { #expect(k.source.contains("void \(entry)(")) }
    }
  }

  @Test(.enabled(if: Availability.nvrtc, "NVRTC not found: set FLASH_ATTN_NVRTC (pip install nvidia-cuda-nvrtc)"))
  func compilesForEveryArchWithoutSpills() throws {
    let cache = KernelCache(directory: nil)
    for arch in [GPUArch.sm80, .sm86, .sm89, .sm90a] {
      for dtype in [DType.float16, .bfloat16] {
        let k = StandardKernels.kernel(dtype: dtype, arch: arch)
        let compiled = try cache.compile(k)
        let reports = compiled.reports
        #expect(Set(reports.map(\.function)) == Set(k.entryPoints))
        for r in reports { #expect(!r.spills, "\(r.function) spills on \(arch)") }
      }
    }
  }
}
