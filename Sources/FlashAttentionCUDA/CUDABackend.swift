import FlashAttention

/// Placeholder until the CUDA backend lands: reports that CUDA is unavailable so callers
/// fall back to the CPU.
public enum CUDABackendFactory {
  public static func make() throws(AttentionError) -> any AttentionBackend {
    throw .backendUnavailable(backend: "cuda", reason: "the CUDA backend is not built yet")
  }
}
