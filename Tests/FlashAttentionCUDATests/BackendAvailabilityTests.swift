import Testing
import FlashAttention
@testable import FlashAttentionCUDA

@Suite struct BackendAvailabilityTests {
  /// Without a GPU the factory says why as `backendUnavailable` (so `--device auto` falls back
  /// to the CPU and `--device cuda` prints one line); with one it makes a CUDA backend.
  @Test func factoryFailsCleanlyWithoutAGPU() {
    do {
      let backend = try CUDABackendFactory.make()
      #expect(Availability.gpu)
      #expect(backend.kind == "cuda")
      #expect(backend.supportedDTypes == [.float16, .bfloat16])
    } catch {
      #expect(!Availability.gpu || !Availability.nvrtc, "a usable GPU but: \(error)")
      guard case let .backendUnavailable(backend, reason) = error else {
        Issue.record("expected backendUnavailable, got \(error)")
        return
      }
      #expect(backend == "cuda")
      #expect(reason.contains("libcuda.so.1") || reason.contains("GPU") || reason.contains("nvrtc"))
      #expect(!error.description.contains("\n"))
    }
  }

  @Test func environmentProbeNeverThrows() {
    let env = CUDAEnvironment.probe()
    if !Availability.gpu { #expect(!env.usable) }
    #expect(!env.cacheDirectory.isEmpty)
  }
}
