import CFlashAttentionKernels

/// The builds of the SIMD micro-kernels. The best one this CPU supports is chosen at first use
/// (CPUID, and the OS's support for the wide registers); the environment variable
/// `FLASH_ATTN_CPU_ISA=portable|avx2|avx512` or `select(_:)` picks another one.
public enum CPUKernelVariant: String, CaseIterable, Sendable {
  /// 4-float vectors: SSE2 on any x86-64, NEON on arm64.
  case portable
  /// 8-float vectors with FMA (x86-64 with AVX2, FMA and F16C).
  case avx2
  /// 16-float vectors with FMA (x86-64 with AVX-512 F/DQ/BW/VL).
  case avx512

  var isa: fa_isa {
    switch self {
    case .portable: FA_ISA_PORTABLE
    case .avx2: FA_ISA_AVX2
    case .avx512: FA_ISA_AVX512
    }
  }

  /// The variant in use.
  public static var active: CPUKernelVariant {
    switch fa_isa(rawValue: UInt32(fa_active_isa())) {
    case FA_ISA_AVX512: .avx512
    case FA_ISA_AVX2: .avx2
    default: .portable
    }
  }

  /// Variants this CPU can run.
  public static var supported: [CPUKernelVariant] { allCases.filter { fa_isa_supported(Int32($0.isa.rawValue)) != 0 } }

  /// Uses `variant` from now on, process-wide; returns false (and changes nothing) when this
  /// CPU cannot run it. Meant for tests and benchmarks: switch only while no attention runs.
  @discardableResult
  public static func select(_ variant: CPUKernelVariant) -> Bool { fa_select_isa(Int32(variant.isa.rawValue)) != 0 }

  /// A short name for reports: `"avx512"`, `"avx2"`, `"portable"` (`"neon"` on arm64).
  public var displayName: String { String(cString: fa_isa_name(Int32(isa.rawValue))) }
}
