import ArgumentParser
import FlashAttention
import FlashAttentionBench
import FlashAttentionCPU
import Foundation

/// `flash-attn verify`: the correctness grid against the float64 reference on one device,
/// as a pass/fail table. This is how GPU kernels are tested (CI has no GPU).
struct VerifyCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "verify",
    abstract: "Check flash and standard attention against a float64 reference on a device; print a pass/fail table.",
    discussion: """
      Random inputs in [-1, 1] (never zeros), rounded to each dtype; O, LSE, dQ, dK and dV \
      compared by relative L2 error. Flash passes when its error is at most 2× the standard \
      algorithm's on the same device plus one unit roundoff, and below an absolute ceiling that \
      bounds the standard algorithm too. Outputs are filled with NaN before each run, so an \
      element no kernel writes fails. Exits non-zero on any failure, or when no case ran.
      """)

  @Option(help: "Where to run: cpu, cuda, or auto (CUDA when usable, else the CPU).")
  var device: DeviceChoice = .auto

  @Flag(help: "A subset of the grid that runs in seconds: one case of each kind.")
  var quick = false

  @Option(help: ArgumentHelp(
    "Comma-separated storage dtypes to test (default: every dtype the device computes from).", valueName: "dtypes"))
  var dtype: String?

  @Option(help: ArgumentHelp(
    "flash: flash against the standard baseline (the grid's rule); standard: the standard algorithm alone, under the absolute ceiling.",
    valueName: "algorithm"))
  var algorithm: AttentionAlgorithm = .flash

  @Option(help: "Seed of the random inputs.")
  var seed: UInt64 = 2024

  @Flag(help: ArgumentHelp(
    "Check the resident path benchmarks time instead (prepare/measure/results): flash against standard on inputs made on the device, forward+backward, with times and peak memory."))
  var prepared = false

  func run() throws {
    let backend: any AttentionBackend =
      device == .cpu ? CPUBackend() : try DeviceSelection.backend(for: device)
    let dtypes = try parseDTypes() ?? backend.supportedDTypes
    let cases = quick ? VerificationGrid.quick : VerificationGrid.full
    emit("verify on \(backend.kind): \(backend.deviceName); \(cases.count) cases × \(dtypes.map(\.shortName).joined(separator: ",")); \(algorithm.rawValue)")
    var counts: [VerificationOutcome.Status: Int] = [:]
    let verifier = AttentionVerifier(backend: backend, seed: seed)
    for c in cases {
      for d in dtypes {
        let (status, row): (VerificationOutcome.Status, String)
        if prepared {
          let outcome = PreparedCheck.verify(c, dtype: d, backend: backend, seed: seed)
          (status, row) = (outcome.status, outcome.row)
        } else if algorithm == .flash {
          let outcome = verifier.verify(c, dtype: d)
          (status, row) = (outcome.status, outcome.tableRow)
        } else {
          let outcome = StandardOnlyCheck.verify(c, dtype: d, backend: backend, seed: seed)
          (status, row) = (outcome.status, outcome.tableRow)
        }
        counts[status, default: 0] += 1
        emit(row)
      }
    }
    let passed = counts[.passed] ?? 0
    let failed = counts[.failed] ?? 0
    let skipped = counts[.skipped] ?? 0
    emit("\(passed) passed, \(failed) failed, \(skipped) skipped")
    if failed > 0 {
      throw AttentionError.backendFailure(backend: backend.kind, message: "verify: \(failed) case(s) failed")
    }
    if passed == 0 {
      throw AttentionError.backendFailure(backend: backend.kind, message: "verify: no case ran (all skipped)")
    }
  }

  /// One line to standard output at once (unbuffered, so a long run shows progress in a pipe).
  private func emit(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

  private func parseDTypes() throws -> [DType]? {
    guard let dtype else { return nil }
    return try dtype.split(separator: ",").map { name in
      guard let d = DType(name: String(name)) else {
        throw AttentionError.invalidArgument(argument: "--dtype", value: String(name), expected: "fp32, fp16 or bf16")
      }
      return d
    }
  }
}

/// The standard algorithm alone against the reference, under the grid rule's absolute
/// ceiling: how a backend's baseline is checked before (or apart from) its flash kernels.
enum StandardOnlyCheck {
  struct Outcome {
    var testCase: VerificationCase
    var dtype: DType
    var status: VerificationOutcome.Status
    var message = ""
    var errors: [(VerifiedQuantity, Double)] = []

    var tableRow: String {
      let cells = errors.map { "\($0.0.rawValue) \(String(format: "%.1e", $0.1))" }
      let head = "\(status.rawValue.uppercased().padding(toLength: 7, withPad: " ", startingAt: 0)) "
        + "\(dtype.shortName) \(testCase.name.padding(toLength: 24, withPad: " ", startingAt: 0))"
      return head + " standard " + cells.joined(separator: "  ") + (message.isEmpty ? "" : "  (\(message))")
    }
  }

  static func verify(_ c: VerificationCase, dtype: DType, backend: any AttentionBackend, seed: UInt64) -> Outcome {
    var outcome = Outcome(testCase: c, dtype: dtype, status: .skipped)
    let p = c.problem
    do {
      try backend.check(p, algorithm: .standard, dtype: dtype)
    } catch {
      outcome.message = error.description
      return outcome
    }
    func random(_ shape: TensorShape, _ s: UInt64) -> Tensor<Float> {
      let rounded = AnyTensor(Tensor<Float>(shape: shape.dimensions, randomIn: -1...1, seed: s)).converted(to: dtype)
      return Tensor(shape: shape.dimensions, elements: rounded.floats())
    }
    let q = random(p.queryShape, seed), k = random(p.keyValueShape, seed &+ 1)
    let v = random(p.keyValueShape, seed &+ 2), dO = random(p.queryShape, seed &+ 3)
    let rule = ToleranceRule()
    do {
      let convert = { (t: Tensor<Float>) in AnyTensor(t).converted(to: dtype) }
      let f = try backend.forward(p, algorithm: .standard, q: convert(q), k: convert(k), v: convert(v), dtype: dtype)
      let b = try backend.backward(
        p, algorithm: .standard, q: convert(q), k: convert(k), v: convert(v), output: f.output, dOutput: convert(dO),
        lse: f.lse, dtype: dtype)
      let reference = try withExtendedLifetime((q, k, v, dO)) { () throws(AttentionError) in
        let (qv, kv, vv, gv) = (try q.view(), try k.view(), try v.view(), try dO.view())
        return (
          ReferenceAttention.forward(p, q: qv, k: kv, v: vv),
          ReferenceAttention.backward(p, q: qv, k: kv, v: vv, dOutput: gv)
        )
      }
      let pairs: [(VerifiedQuantity, [Float], [Double])] = [
        (.output, f.output.floats(), reference.0.output), (.lse, f.lse.elements, reference.0.lse),
        (.dq, b.dq.floats(), reference.1.dq), (.dk, b.dk.floats(), reference.1.dk), (.dv, b.dv.floats(), reference.1.dv),
      ]
      var failures: [String] = []
      for (quantity, values, ref) in pairs {
        let error = ErrorMetrics.relativeL2(values, ref)
        outcome.errors.append((quantity, error))
        // NaN fails: the comparison is false.
        if !(error <= rule.ceiling(dtype)) { failures.append("\(quantity.rawValue) \(error) > \(rule.ceiling(dtype))") }
      }
      outcome.status = failures.isEmpty ? .passed : .failed
      outcome.message = failures.joined(separator: "; ")
    } catch {
      outcome.status = .failed
      outcome.message = "standard: \(error.description)"
    }
    return outcome
  }
}

/// Flash against standard through `prepare`/`measure`/`results` — the path `bench` times —
/// on inputs generated by the backend from the seed: forward+backward results must agree
/// within the grid's ceiling, and on the GPU the flash forward's peak extra memory must be
/// exactly O plus LSE.
enum PreparedCheck {
  struct Outcome {
    var status: VerificationOutcome.Status
    var row: String
  }

  static func verify(_ c: VerificationCase, dtype: DType, backend: any AttentionBackend, seed: UInt64) -> Outcome {
    let p = c.problem
    let head = "\(dtype.shortName) \(c.name.padding(toLength: 24, withPad: " ", startingAt: 0))"
    do {
      try backend.check(p, algorithm: .flash, dtype: dtype)
      try backend.check(p, algorithm: .standard, dtype: dtype)
    } catch {
      return Outcome(status: .skipped, row: "SKIPPED \(head) (\(error))")
    }
    do {
      var results: [AttentionAlgorithm: [String: [Float]]] = [:]
      var cells: [String] = []
      for algorithm in [AttentionAlgorithm.flash, .standard] {
        let run = try backend.prepare(p, algorithm: algorithm, pass: .forwardBackward, dtype: dtype, seed: seed)
        let times = try run.measure(warmup: 1, repeats: 3).sorted()
        results[algorithm] = try run.results()
        cells.append("\(algorithm.rawValue) \(String(format: "%.3f", times[times.count / 2])) ms peak \(run.peakExtraBytes) B")
      }
      let forward = try backend.prepare(p, algorithm: .flash, pass: .forward, dtype: dtype, seed: seed)
      _ = try forward.measure(warmup: 0, repeats: 1)
      let expectedPeak = p.queryShape.elementCount * dtype.byteCount + p.lseCount * 4
      var failures: [String] = []
      // On the GPU nothing but O and LSE may be allocated (the CPU adds per-thread tiles).
      if backend.kind == "cuda" && forward.peakExtraBytes != expectedPeak {
        failures.append("flash forward peak \(forward.peakExtraBytes) B ≠ O + LSE \(expectedPeak) B")
      }
      let ceiling = ToleranceRule().ceiling(dtype)
      for key in ["O", "dQ", "dK", "dV"] {
        guard let f = results[.flash]?[key], let s = results[.standard]?[key], f.count == s.count else {
          failures.append("\(key) missing")
          continue
        }
        let difference = ErrorMetrics.relativeL2(f, s.map(Double.init))
        cells.append("\(key) \(String(format: "%.1e", difference))")
        if !(difference <= ceiling) { failures.append("\(key) flash vs standard \(difference) > \(ceiling)") }
      }
      let status: VerificationOutcome.Status = failures.isEmpty ? .passed : .failed
      let tail = failures.isEmpty ? "" : "  (\(failures.joined(separator: "; ")))"
      return Outcome(
        status: status,
        row: "\(status.rawValue.uppercased().padding(toLength: 7, withPad: " ", startingAt: 0)) \(head) " + cells.joined(separator: "  ") + tail)
    } catch {
      return Outcome(status: .failed, row: "FAILED  \(head) (\(error))")
    }
  }
}
