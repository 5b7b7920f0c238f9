/// The quantities a verification compares with the float64 reference.
public enum VerifiedQuantity: String, Sendable, CaseIterable {
  case output = "O", lse = "LSE", dq = "dQ", dk = "dK", dv = "dV"
}

/// The verdict on one (case, dtype).
public struct VerificationOutcome: Sendable {
  public enum Status: String, Sendable { case passed, failed, skipped }
  /// Relative L2 errors against the reference of one quantity.
  public struct Errors: Sendable {
    public var flash: Double
    /// nil when the backend has no standard algorithm for the case.
    public var standard: Double?
    public var bound: Double
    public var passed: Bool { flash <= bound }  // false for NaN
  }

  public var testCase: VerificationCase
  public var dtype: DType
  public var status: Status
  /// Why it failed or was skipped; empty when it passed.
  public var message: String
  public var errors: [VerifiedQuantity: Errors]

  /// One line for a pass/fail table.
  public var tableRow: String {
    let cells = VerifiedQuantity.allCases.map { quantity -> String in
      guard let e = errors[quantity] else { return "-" }
      return "\(quantity.rawValue) \(Self.format(e.flash))\(e.passed ? "" : "!")"
    }
    let head = "\(status.rawValue.uppercased().padding(toLength: 7, withPad: " ", startingAt: 0)) "
      + "\(dtype.shortName) \(testCase.name.padding(toLength: 24, withPad: " ", startingAt: 0))"
    return head + " " + cells.joined(separator: "  ") + (message.isEmpty ? "" : "  (\(message))")
  }

  static func format(_ x: Double) -> String {
    if x.isNaN { return "NaN" }
    if x == 0 { return "0" }
    var exponent = 0
    var mantissa = x
    while mantissa >= 10 { mantissa /= 10; exponent += 1 }
    while mantissa < 1 { mantissa *= 10; exponent -= 1 }
    let rounded = (mantissa * 10).rounded() / 10
    return "\(rounded)e\(exponent)"
  }
}

/// Checks any `AttentionBackend` against the float64 reference: random inputs (uniform in
/// [−1, 1], never zeros) rounded to the dtype under test — the reference sees exactly the
/// rounded values — then flash and standard, forward and backward, in that dtype, and the
/// `ToleranceRule` on O, LSE, dQ, dK and dV. NaN anywhere fails. A case the backend rejects
/// with `.unsupported` (from `check`) is reported as skipped.
public struct AttentionVerifier {
  public let backend: any AttentionBackend
  public var rule: ToleranceRule
  public var seed: UInt64

  public init(backend: any AttentionBackend, rule: ToleranceRule = ToleranceRule(), seed: UInt64 = 2024) {
    self.backend = backend
    self.rule = rule
    self.seed = seed
  }

  /// Every case in every dtype (default: the backend's supported dtypes), in order.
  public func verify(_ cases: [VerificationCase], dtypes: [DType]? = nil) -> [VerificationOutcome] {
    let types = dtypes ?? backend.supportedDTypes
    return cases.flatMap { c in types.map { verify(c, dtype: $0) } }
  }

  public func verify(_ testCase: VerificationCase, dtype: DType) -> VerificationOutcome {
    var outcome = VerificationOutcome(testCase: testCase, dtype: dtype, status: .skipped, message: "", errors: [:])
    let p = testCase.problem
    do {
      try backend.check(p, algorithm: .flash, dtype: dtype)
    } catch {
      outcome.message = error.description
      return outcome
    }
    let inputs = Inputs(problem: p, dtype: dtype, seed: seed)
    let reference = inputs.reference()

    let flash: [VerifiedQuantity: [Float]]
    do {
      flash = try run(.flash, inputs)
    } catch {
      outcome.status = .failed
      outcome.message = "flash: \(error.description)"
      return outcome
    }
    var standard: [VerifiedQuantity: [Float]]? = nil
    var standardNote = ""
    do {
      try backend.check(p, algorithm: .standard, dtype: dtype)
      standard = try run(.standard, inputs)
    } catch {
      standardNote = "no standard baseline: \(error.description)"
    }

    var failures: [String] = []
    for quantity in VerifiedQuantity.allCases {
      let ref = reference[quantity]!
      let flashError = ErrorMetrics.relativeL2(flash[quantity]!, ref)
      let standardError = standard.map { ErrorMetrics.relativeL2($0[quantity]!, ref) }
      let errors = VerificationOutcome.Errors(
        flash: flashError, standard: standardError,
        bound: rule.bound(standardError: standardError, dtype: dtype))
      outcome.errors[quantity] = errors
      if !errors.passed {
        failures.append("\(quantity.rawValue) \(VerificationOutcome.format(flashError)) > \(VerificationOutcome.format(errors.bound))")
      }
      if let s = standardError, !(s <= rule.ceiling(dtype)) {
        failures.append("standard \(quantity.rawValue) \(VerificationOutcome.format(s)) > \(VerificationOutcome.format(rule.ceiling(dtype)))")
      }
    }
    outcome.status = failures.isEmpty ? .passed : .failed
    outcome.message = (failures + (standardNote.isEmpty ? [] : [standardNote])).joined(separator: "; ")
    return outcome
  }

  /// Forward then backward (fed with this algorithm's own O and LSE); results as Float.
  private func run(_ algorithm: AttentionAlgorithm, _ x: Inputs) throws(AttentionError) -> [VerifiedQuantity: [Float]] {
    let f = try backend.forward(x.problem, algorithm: algorithm, q: x.q, k: x.k, v: x.v, dtype: x.dtype)
    let b = try backend.backward(
      x.problem, algorithm: algorithm, q: x.q, k: x.k, v: x.v, output: f.output, dOutput: x.dOutput,
      lse: f.lse, dtype: x.dtype)
    return [
      .output: f.output.floats(), .lse: f.lse.elements, .dq: b.dq.floats(), .dk: b.dk.floats(),
      .dv: b.dv.floats(),
    ]
  }

  /// Q, K, V, dO rounded to the dtype under test.
  struct Inputs {
    let problem: AttentionProblem
    let dtype: DType
    let q: AnyTensor, k: AnyTensor, v: AnyTensor, dOutput: AnyTensor

    init(problem p: AttentionProblem, dtype: DType, seed: UInt64) {
      problem = p
      self.dtype = dtype
      func random(_ shape: TensorShape, _ s: UInt64) -> AnyTensor {
        AnyTensor(Tensor<Float>(shape: shape.dimensions, randomIn: -1...1, seed: s)).converted(to: dtype)
      }
      q = random(p.queryShape, seed)
      k = random(p.keyValueShape, seed &+ 1)
      v = random(p.keyValueShape, seed &+ 2)
      dOutput = random(p.queryShape, seed &+ 3)
    }

    /// The float64 reference on exactly the rounded inputs.
    func reference() -> [VerifiedQuantity: [Double]] {
      func floats(_ t: AnyTensor) -> Tensor<Float> { Tensor(shape: t.shape, elements: t.floats()) }
      let qf = floats(q), kf = floats(k), vf = floats(v), gf = floats(dOutput)
      // Rank 4 by construction, so the views cannot throw.
      // Views hold raw pointers: keep their owners alive until the reference is done.
      return withExtendedLifetime((qf, kf, vf, gf)) {
        let qv = try! qf.view(), kv = try! kf.view(), vv = try! vf.view(), gv = try! gf.view()
        let f = ReferenceAttention.forward(problem, q: qv, k: kv, v: vv)
        let b = ReferenceAttention.backward(problem, q: qv, k: kv, v: vv, dOutput: gv)
        return [.output: f.output, .lse: f.lse, .dq: b.dq, .dk: b.dk, .dv: b.dv]
      }
    }
  }
}
