import FlashAttention

/// Every kernel the CUDA backend can generate for an arch: the flash kernels of
/// `FlashAttentionKernels.catalog(arch:)` and the standard path's own kernels.
public enum KernelCatalog {
  public static func kernels(arch: GPUArch) -> [GeneratedKernel] {
    FlashPath.catalog(arch: arch) + [DType.float16, .bfloat16].map { StandardKernels.kernel(dtype: $0, arch: arch) }
  }
}
