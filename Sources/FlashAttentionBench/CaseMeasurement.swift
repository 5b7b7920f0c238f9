import FlashAttention

/// Measurement settings shared by every configuration of a run.
public struct MeasureSettings: Sendable {
  /// Untimed runs per implementation before timing.
  public var warmup: Int
  /// Timed runs per implementation; the median is reported.
  public var repeats: Int
  /// Seed of the random inputs (uniform in [-1, 1]); every implementation of one
  /// configuration sees the same inputs.
  public var seed: UInt64
  /// A standard (materialising) baseline that would need more host memory than this is
  /// recorded as `oom` without being run (CPU only; `nil`: no limit). On a GPU the
  /// backend's own allocator reports out-of-memory.
  public var hostMemoryLimitBytes: Int?
  /// Check flash against standard on the same inputs and record the max error.
  public var checkAgreement: Bool

  public init(
    warmup: Int, repeats: Int, seed: UInt64 = 0x5EED, hostMemoryLimitBytes: Int? = nil, checkAgreement: Bool = true
  ) {
    self.warmup = warmup
    self.repeats = repeats
    self.seed = seed
    self.hostMemoryLimitBytes = hostMemoryLimitBytes
    self.checkAgreement = checkAgreement
  }
}

/// Measures one configuration for several implementations, interleaved round-robin so
/// that a noisy machine (other tenants, frequency changes) slows all of them alike.
public enum CaseMeasurement {
  /// One record per implementation; never throws — failures become `oom`,
  /// `unsupported` or `error` rows.
  public static func measure(
    _ c: BenchCase, implementations: [Implementation], experiments: [String],
    backend: any AttentionBackend, settings: MeasureSettings
  ) -> [BenchRecord] {
    var records: [Implementation: BenchRecord] = [:]
    var prepared: [(Implementation, any PreparedAttention)] = []
    var times: [Implementation: [Double]] = [:]
    let device = backend.deviceName

    func fail(_ impl: Implementation, _ error: AttentionError) {
      let status: BenchStatus
      switch error {
      case .outOfMemory: status = .oom
      case .unsupported: status = .unsupported
      default: status = .error
      }
      records[impl] = BenchRecord(
        implementation: impl, device: device, benchCase: c, status: status, experiments: experiments,
        note: error.description)
      prepared.removeAll { $0.0 == impl }
    }

    let problem: AttentionProblem
    do { problem = try c.problem() } catch {
      for impl in implementations { fail(impl, error) }
      return implementations.compactMap { records[$0] }
    }

    for impl in implementations {
      guard let algorithm = impl.algorithm else { continue }
      if algorithm == .standard, backend.kind == "cpu", let limit = settings.hostMemoryLimitBytes,
        c.standardScoreBytes + c.inputBytes > limit
      {
        // Materialising S and P would exhaust the host and get the process killed: record
        // what a GPU allocator would have said.
        fail(impl, .outOfMemory(device: device, requestedBytes: c.standardScoreBytes))
        continue
      }
      do {
        try backend.check(problem, algorithm: algorithm, dtype: c.dtype)
        let p = try backend.prepare(problem, algorithm: algorithm, pass: c.pass, dtype: c.dtype, seed: settings.seed)
        prepared.append((impl, p))
      } catch { fail(impl, error) }
    }

    // Warm-up: the first of the runs is discarded, so every implementation does
    // `warmup` untimed runs in all.
    if settings.warmup > 0 {
      for (impl, p) in prepared {
        do { _ = try p.measure(warmup: settings.warmup - 1, repeats: 1) } catch { fail(impl, error) }
      }
    }
    // Round-robin: one timed run of each implementation per round, the starting one
    // rotating, so none is always first after another's cache pollution.
    let repeats = max(1, settings.repeats)
    for round in 0..<repeats {
      let snapshot = prepared
      let n = snapshot.count
      guard n > 0 else { break }
      for j in 0..<n {
        let (impl, p) = snapshot[(round + j) % n]
        guard prepared.contains(where: { $0.0 == impl }) else { continue }
        do { times[impl, default: []] += try p.measure(warmup: 0, repeats: 1) } catch { fail(impl, error) }
      }
    }

    var maxError: Double?
    if settings.checkAgreement,
      let flash = prepared.first(where: { $0.0 == .flash })?.1,
      let standard = prepared.first(where: { $0.0 == .standard })?.1
    {
      do {
        maxError = try Self.maxDifference(flash.results(), standard.results())
      } catch {
        maxError = nil
      }
    }

    // Peak memory. The CPU backend measures each run's own high-water mark, so it is right
    // with several implementations resident. A device allocator's peak is global from
    // `prepare` on, so there each implementation is prepared and run once more, alone.
    var peaks: [Implementation: Int] = [:]
    let measured = prepared.map(\.0)
    if backend.kind == "cpu" {
      for (impl, p) in prepared { peaks[impl] = p.peakExtraBytes }
      prepared.removeAll()
    } else {
      prepared.removeAll()
      for impl in measured {
        guard let algorithm = impl.algorithm else { continue }
        do {
          let alone = try backend.prepare(problem, algorithm: algorithm, pass: c.pass, dtype: c.dtype, seed: settings.seed)
          _ = try alone.measure(warmup: 0, repeats: 1)
          peaks[impl] = alone.peakExtraBytes
        } catch {
          peaks[impl] = nil  // timed fine beside the others; its memory alone is unknown
        }
      }
    }

    for impl in measured {
      var r = BenchRecord(implementation: impl, device: device, benchCase: c, status: .ok, experiments: experiments)
      r.setTimes(times[impl] ?? [], flops: c.flops)
      r.peakMemoryBytes = peaks[impl]
      r.maxError = maxError
      records[impl] = r
    }
    return implementations.compactMap { records[$0] }
  }

  /// max |a − b| over the outputs both have (O, or dQ, dK, dV); NaN anywhere gives NaN.
  public static func maxDifference(_ a: [String: [Float]], _ b: [String: [Float]]) -> Double? {
    var worst: Double?
    for (key, x) in a.sorted(by: { $0.key < $1.key }) {
      guard let y = b[key], y.count == x.count else { continue }
      var m = 0.0
      for i in 0..<x.count {
        let d = Double(x[i]) - Double(y[i])
        if d.isNaN { return .nan }
        m = max(m, abs(d))
      }
      worst = max(worst ?? 0, m)
    }
    return worst
  }
}
