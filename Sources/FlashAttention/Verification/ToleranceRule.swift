/// When a flash result counts as correct.
///
/// Flash's relative L2 error against the float64 reference may be at most `factor` × the
/// error of the same backend's standard algorithm in the same dtype, plus `floor(dtype)` (so a
/// case where standard happens to be exact does not demand exactness), and never above
/// `ceiling(dtype)` — which also bounds the standard algorithm itself, so a broken baseline
/// cannot make a broken flash pass.
public struct ToleranceRule: Sendable {
  public var factor: Double
  public init(factor: Double = 2) { self.factor = factor }

  /// The unit roundoff of the storage dtype: the error one rounding of the output adds.
  public func floor(_ dtype: DType) -> Double {
    switch dtype {
    case .float32: 0x1p-24
    case .float16: 0x1p-11
    case .bfloat16: 0x1p-8
    }
  }

  /// An absolute upper bound for any algorithm: the `flash-attn` acceptance bound of 1e-4 in
  /// float32; about 20 unit roundoffs in the 16-bit dtypes.
  public func ceiling(_ dtype: DType) -> Double {
    switch dtype {
    case .float32: 1e-4
    case .float16: 1e-2
    case .bfloat16: 8e-2
    }
  }

  /// The largest flash error accepted given the standard algorithm's error (nil when the
  /// backend has no standard algorithm for the case).
  public func bound(standardError: Double?, dtype: DType) -> Double {
    guard let s = standardError, s.isFinite else { return ceiling(dtype) }
    return min(ceiling(dtype), factor * s + floor(dtype))
  }
}
