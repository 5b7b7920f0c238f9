import FlashAttention

/// GPU architectures we generate code for. `sm_90a` enables Hopper-only instructions
/// (wgmma, setmaxnreg); the others run the mma.sync path.
public enum GPUArch: String, Hashable, Sendable, CaseIterable, Codable {
  case sm80 = "sm_80", sm86 = "sm_86", sm89 = "sm_89", sm90 = "sm_90", sm90a = "sm_90a"

  /// Parses `sm_80`, `sm_90a`, … (also `80`, `90a`).
  public init?(name: String) {
    let n = name.hasPrefix("sm_") ? name : "sm_" + name
    self.init(rawValue: n)
  }
  /// The arch to compile for on a device of compute capability `major.minor`
  /// (Hopper gets `sm_90a` so its own instructions are available); nil below sm_80.
  public init?(computeCapability major: Int, _ minor: Int) {
    switch (major, minor) {
    case (8, 0): self = .sm80
    case (8, 6), (8, 7): self = .sm86
    case (8, 9): self = .sm89
    case (9, _): self = .sm90a
    case (let m, _) where m >= 10: return nil
    default: return nil
    }
  }
  public var isHopper: Bool { self == .sm90 || self == .sm90a }
}

/// Self-contained CUDA C++ for one kernel variant (no `#include` of CUDA headers), as
/// generated from a descriptor. Its `name` is unique per variant and readable, e.g.
/// `flash_fwd_bf16_d128_bm128_bn64_w4_s2_causal_sm80`.
public struct GeneratedKernel: Hashable, Sendable {
  public var name: String
  /// The `extern "C" __global__` functions the source defines.
  public var entryPoints: [String]
  public var source: String
  public var arch: GPUArch
  public init(name: String, entryPoints: [String], source: String, arch: GPUArch) {
    self.name = name
    self.entryPoints = entryPoints
    self.source = source
    self.arch = arch
  }
}

/// Grid or block dimensions.
public struct Dim3: Hashable, Sendable {
  public var x: Int, y: Int, z: Int
  public init(_ x: Int, _ y: Int = 1, _ z: Int = 1) {
    self.x = x
    self.y = y
    self.z = z
  }
}

/// Everything the runtime needs to launch one generated kernel. Every generated kernel
/// takes exactly one by-value argument, a C `struct Params` defined in its source;
/// `parameterBlock` holds that struct's bytes laid out by C rules.
public struct KernelLaunch: Sendable {
  public var kernel: GeneratedKernel
  public var entryPoint: String
  public var grid: Dim3
  public var block: Dim3
  /// Dynamic shared memory; above 48 KiB the runtime raises the function's limit first.
  public var dynamicSharedMemoryBytes: Int
  public var parameterBlock: [UInt8]
  public init(
    kernel: GeneratedKernel, entryPoint: String, grid: Dim3, block: Dim3,
    dynamicSharedMemoryBytes: Int, parameterBlock: [UInt8]
  ) {
    self.kernel = kernel
    self.entryPoint = entryPoint
    self.grid = grid
    self.block = block
    self.dynamicSharedMemoryBytes = dynamicSharedMemoryBytes
    self.parameterBlock = parameterBlock
  }
}

/// A tensor in device memory as the kernels see it: a base address and element strides of
/// the `(batch, seqlen, heads, headDim)` view (headDim contiguous).
public struct DeviceTensorRef: Hashable, Sendable {
  public var address: UInt64
  public var strides: TensorStrides
  public init(address: UInt64, strides: TensorStrides) {
    self.address = address
    self.strides = strides
  }
}
