import ArgumentParser
import Foundation
import FlashAttention
import FlashAttentionBench

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// `flash-attn bench`: flash vs standard attention (and PyTorch) over the seed reports'
/// sweeps; a live table, results.json/.csv, SVG charts and one Markdown/HTML report.
struct BenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench",
    abstract: "Benchmark flash vs standard attention (and PyTorch) over sweeps; write tables, charts and a report.",
    discussion: """
      With no arguments: --device auto and the `paper` preset — the full FlashAttention-paper grid on a \
      GPU, scaled to about a minute (--max-seconds 60) on a CPU. Presets: \
      \(Preset.allCases.map { "\($0.rawValue) (\($0.summary))" }.joined(separator: "; ")). \
      Or give the axes yourself, e.g. --seqlen 512,1024,2048 --batch 16 --heads 16 --head-dim 64 --causal both.
      """,
    subcommands: [BenchCompareCommand.self])

  @Option(help: "Where to run: cpu, cuda, or auto (CUDA when usable, else the CPU).")
  var device: DeviceChoice = .auto

  @Option(help: ArgumentHelp(
    "A named sweep: \(Preset.allCases.map(\.rawValue).joined(separator: ", ")) (default: paper, unless axes are given).",
    valueName: "name"))
  var preset: String?

  @Option(help: ArgumentHelp("Sequence lengths (queries), comma-separated.", valueName: "list"))
  var seqlen: String?
  @Option(name: .customLong("seqlen-k"), help: ArgumentHelp("Key/value lengths (default: = seqlen).", valueName: "list"))
  var seqlenK: String?
  @Option(help: ArgumentHelp("Batch sizes.", valueName: "list"))
  var batch: String?
  @Option(help: ArgumentHelp("Query heads.", valueName: "list"))
  var heads: String?
  @Option(name: .customLong("kv-heads"), help: ArgumentHelp("Key/value heads, dividing heads (GQA/MQA).", valueName: "list"))
  var kvHeads: String?
  @Option(name: .customLong("head-dim"), help: ArgumentHelp("Head dims.", valueName: "list"))
  var headDim: String?
  @Option(help: ArgumentHelp(
    "Embedding dims (heads × head dim): head dim = emb / heads, or heads = emb / head dim when --head-dim is given without --heads.",
    valueName: "list"))
  var emb: String?
  @Option(help: ArgumentHelp("Fix batch × seqlen to this many tokens (batch = tokens / seqlen).", valueName: "n"))
  var tokens: Int?
  @Option(help: ArgumentHelp("Causal mask: no, yes, or both.", valueName: "no|yes|both"))
  var causal: String?
  @Option(name: .customLong("pass"), help: ArgumentHelp(
    "Passes: forward, backward, forward+backward (comma-separated).", valueName: "list"))
  var passes: String?
  @Option(help: ArgumentHelp("Storage dtypes: fp32, fp16, bf16 (default: fp32 on a CPU, bf16 on a GPU).", valueName: "list"))
  var dtype: String?
  @Option(name: .customLong("impl"), help: ArgumentHelp("Our implementations: flash, standard.", valueName: "list"))
  var implementations: String = "flash,standard"

  @Flag(name: .customLong("with-pytorch"), help: "Also run PyTorch (naive, and SDPA flash/efficient/cuDNN on a GPU) on the same configurations.")
  var withPyTorch = false
  @Option(help: ArgumentHelp("Python interpreter for --with-pytorch.", valueName: "path"))
  var python: String = "python3"
  @Option(name: .customLong("pytorch-script"), help: ArgumentHelp(
    "The PyTorch script (default: scripts/bench_pytorch.py of this checkout).", valueName: "path"))
  var pytorchScript: String?

  @Option(help: ArgumentHelp("Untimed runs per implementation (default: 1 on a CPU, 5 on a GPU).", valueName: "n"))
  var warmup: Int?
  @Option(help: ArgumentHelp("Timed runs per implementation; the median is reported (default: 5 on a CPU, 20 on a GPU).", valueName: "n"))
  var repeats: Int?
  @Option(name: .customLong("max-seconds"), help: ArgumentHelp(
    "Time budget: presets scale down (smaller batches, then fewer configurations) to fit; 0 = none. Default: 60 for presets on a CPU (20 for smoke), none otherwise.",
    valueName: "s"))
  var maxSeconds: Double?
  @Option(help: ArgumentHelp("Seed of the random inputs.", valueName: "n"))
  var seed: UInt64 = 0x5EED
  @Option(help: ArgumentHelp("Output folder (default: bench-results/<timestamp>/).", valueName: "dir"))
  var output: String?
  @Flag(name: .customLong("no-progress"), help: "Do not draw the progress line on standard error.")
  var noProgress = false
  @Flag(name: .customLong("no-check"), help: "Skip the flash vs standard agreement check (max error).")
  var noCheck = false

  func validate() throws {
    if let preset, Preset(rawValue: preset) == nil {
      throw AttentionError.invalidArgument(
        argument: "--preset", value: preset, expected: Preset.allCases.map(\.rawValue).joined(separator: ", "))
    }
    if preset != nil, hasExplicitAxes {
      throw AttentionError.invalidArgument(
        argument: "--preset", value: preset!,
        expected: "either a preset or explicit axes (--seqlen, --batch, …), not both (--dtype may go with a preset)")
    }
    if let warmup, warmup < 0 { throw AttentionError.invalidArgument(argument: "--warmup", value: "\(warmup)", expected: "≥ 0") }
    if let repeats, repeats < 1 { throw AttentionError.invalidArgument(argument: "--repeats", value: "\(repeats)", expected: "≥ 1") }
    if let maxSeconds, !(maxSeconds >= 0) {
      throw AttentionError.invalidArgument(argument: "--max-seconds", value: "\(maxSeconds)", expected: "≥ 0 (0: no limit)")
    }
    if let tokens, tokens < 1 { throw AttentionError.invalidArgument(argument: "--tokens", value: "\(tokens)", expected: "≥ 1") }
  }

  var hasExplicitAxes: Bool {
    [seqlen, seqlenK, batch, heads, kvHeads, headDim, emb, causal, passes].contains { $0 != nil } || tokens != nil
  }

  func run() throws {
    // Bad axes are reported before any device is opened: every value parses and every
    // configuration is a valid problem (a typed error names the first bad argument).
    let chosenPresetEarly = preset.flatMap(Preset.init(rawValue:)) ?? (hasExplicitAxes ? nil : .paper)
    let dtypesEarly = try dtype.map { try Self.parseList($0, "--dtype") { DType(name: $0) } } ?? [.float32]
    for e in try experiments(preset: chosenPresetEarly, dtypes: dtypesEarly) {
      for c in try e.cases() { _ = try c.problem() }
    }
    let backend = try DeviceSelection.backend(for: device)
    let gpu = backend.kind != "cpu"
    let dtypes = try dtype.map { try Self.parseList($0, "--dtype") { DType(name: $0) } } ?? [gpu ? .bfloat16 : .float32]
    let ours = try Self.parseList(implementations, "--impl") { name -> Implementation? in
      let i = Implementation(name)
      return i.algorithm == nil ? nil : i
    }
    let chosenPreset = preset.flatMap(Preset.init(rawValue:)) ?? (hasExplicitAxes ? nil : .paper)
    var plan = BenchPlan(experiments: try experiments(preset: chosenPreset, dtypes: dtypes), implementations: ours)

    let settings = MeasureSettings(
      warmup: warmup ?? (gpu ? 5 : 1), repeats: repeats ?? (gpu ? 20 : (chosenPreset == .smoke ? 3 : 5)), seed: seed,
      hostMemoryLimitBytes: gpu ? nil : MachineInfo.availableMemoryBytes * 8 / 10, checkAgreement: !noCheck)
    let budget: Double? = {
      if let maxSeconds { return maxSeconds > 0 ? maxSeconds : nil }
      guard !gpu, let chosenPreset else { return nil }
      return chosenPreset == .smoke ? 20 : 60
    }()
    let runner = BenchRunner(backend: backend, settings: settings, maxSeconds: budget)
    let torchImpls = withPyTorch ? Implementation.pyTorchSet(gpu: gpu) : []
    let started = Date()
    var cost: CostModel?
    if let budget {
      let model = runner.calibrate(dtype: dtypes[0], implementations: ours)
      cost = model
      plan = try BudgetPlanner.fit(plan, budgetSeconds: budget, cost: model, extraImplementations: torchImpls)
    }
    let progress = ProgressLine(enabled: !noProgress)
    let header = "bench: \(chosenPreset.map { "preset \($0.rawValue)" } ?? "custom sweep") on \(backend.deviceName)"
      + ", \(try plan.items().count) configurations, warm-up \(settings.warmup), \(settings.repeats) timed runs each"
      + (budget.map { ", budget \(Int($0)) s" } ?? "")
    progress.note(header)
    // The report keeps every note in full; the terminal gets the gist.
    for n in plan.notes { progress.note("note: " + (n.count > 400 ? String(n.prefix(399)) + "… (full list in report.md)" : n)) }

    let table = LiveTable()
    table.printHeader()
    runner.onProgress = { index, count, label in
      let elapsed = Date().timeIntervalSince(started)
      // A rough time left from the pace so far (configurations grow, so it errs short).
      let left = index > 0 ? String(format: ", ~%.0f s left", elapsed / Double(index) * Double(count - index)) : ""
      progress.update(String(format: "[%d/%d] %@  (%.0f s%@)", index + 1, count, label, elapsed, left))
      if index >= count { progress.clear() }
    }
    runner.onRecords = { rows in progress.around { for r in rows { table.print(r) } } }
    // The budget covers the whole command: calibration and planning have used some of it,
    // and writing the report needs a moment at the end.
    if let budget { runner.maxSeconds = max(1, budget - Date().timeIntervalSince(started) - 0.5) }
    var records = try runner.run(plan, cost: cost)
    progress.clear()
    var notes = plan.notes + runner.notes

    if withPyTorch {
      let measured = Set(records.compactMap(\.benchCase))
      // PyTorch rows join the experiments that compare against a baseline (those running our
      // standard attention); with `--impl flash` alone there is no such experiment, so they
      // join every one rather than none.
      let comparesBaselines = ours.contains(.standard)
      let items = try plan.items().filter {
        measured.contains($0.benchCase) && (!comparesBaselines || $0.implementations.contains(.standard))
      }
      if let script = PyTorchBridge.findScript(explicit: pytorchScript) {
        if let version = PyTorchBridge.torchVersion(python: python, script: script) {
          progress.note("bench: PyTorch \(version): \(items.count) configurations through \(script)")
          let left = budget.map { max(10, $0 - Date().timeIntervalSince(started)) }
          let (rows, pyNotes) = PyTorchBridge.run(
            items: items, implementations: torchImpls, gpu: gpu, settings: settings, maxSeconds: left,
            python: python, script: script)
          for r in rows { table.print(r) }
          records += rows
          notes += pyNotes
        } else {
          notes.append("PyTorch rows skipped: `\(python)` cannot import torch (install it, or pass --python).")
        }
      } else {
        notes.append("PyTorch rows skipped: scripts/bench_pytorch.py not found (pass --pytorch-script).")
      }
      if let last = notes.last, last.hasPrefix("PyTorch rows skipped") { progress.note("note: " + last) }
    }

    let directory = output ?? "bench-results/" + Self.timestamp()
    let results = BenchResults(
      metadata: BenchMetadata(
        command: Self.commandLine(), date: ISO8601DateFormatter().string(from: started),
        machine: MachineInfo.summary, device: "\(backend.kind): \(backend.deviceName)", notes: notes),
      records: records)
    let files = try BenchReport.write(results: results, experiments: plan.experiments, to: directory)
    let charts = files.filter { $0.hasSuffix(".svg") }.count
    let elapsed = Date().timeIntervalSince(started)
    progress.note(
      String(format: "bench: %d rows in %.1f s; wrote %@/report.md, report.html, results.json, results.csv and %d charts",
             records.count, elapsed, directory, charts))
    let failures = records.filter { $0.status == .error }
    if !failures.isEmpty {
      progress.note("bench: \(failures.count) row(s) failed with an error (see the note column of results.csv)")
      throw ExitCode(1)
    }
  }

  /// The experiments of a preset, or one custom sweep built from the axis options.
  func experiments(preset: Preset?, dtypes: [DType]) throws -> [Experiment] {
    if let preset {
      return dtypes.flatMap { dt in
        preset.experiments(dtype: dt).map { e in
          var e = e
          if dtypes.count > 1 { e.name += "-\(dt.shortName)"; e.title += " [\(dt.shortName)]" }
          return e
        }
      }
    }
    let ints = { (s: String?, name: String) throws -> [Int]? in
      try s.map { try Self.parseList($0, name) { Int($0).flatMap { $0 > 0 ? $0 : nil } } }
    }
    var a = SweepAxes()
    a.seqlen = try ints(seqlen, "--seqlen") ?? [1024]
    a.seqlenK = try ints(seqlenK, "--seqlen-k")
    a.batch = try ints(batch, "--batch") ?? [1]
    a.kvHeads = try ints(kvHeads, "--kv-heads")
    a.tokens = tokens
    a.dtype = dtypes
    if let e = try ints(emb, "--emb") {
      a.embeddingDim = e
      if heads == nil, let d = try ints(headDim, "--head-dim") {
        a.embeddingSplit = .fixHeadDim
        a.headDim = d
      } else {
        a.heads = try ints(heads, "--heads") ?? [16]
      }
    } else {
      a.heads = try ints(heads, "--heads") ?? [16]
      a.headDim = try ints(headDim, "--head-dim") ?? [64]
    }
    a.causal = try causal.map { try Self.parseCausal($0) } ?? [false]
    a.pass = try passes.map { try Self.parseList($0, "--pass") { AttentionPass(rawValue: $0 == "fwd+bwd" ? "forward+backward" : $0) } }
      ?? [.forward]
    // The x axis: the first numeric axis that varies (seqlen first, as the seeds plot).
    let counts: [(SweepAxis, Int)] = [
      (.seqlen, a.seqlen.count), (.batch, a.tokens == nil ? a.batch.count : 1), (.heads, a.embeddingDim == nil ? a.heads.count : 1),
      (.headDim, a.embeddingDim == nil ? a.headDim.count : 1), (.embeddingDim, a.embeddingDim?.count ?? 1),
      (.kvHeads, a.kvHeads?.count ?? 1),
    ]
    let varying = counts.filter { $0.1 > 1 }.map(\.0)
    let x = varying.first ?? (a.pass.count > 1 ? .pass : a.causal.count > 1 ? .causal : .seqlen)
    let y: SweepAxis? = x == .seqlen && varying.contains(.batch) ? .batch : nil
    let cases = try a.expand()
    // Title: what the sweep holds fixed, e.g. "batch 1, 8 heads, head dim 64, fp32".
    var fixed: [String] = []
    if a.tokens == nil, a.batch.count == 1 { fixed.append("batch \(a.batch[0])") }
    if let t = a.tokens { fixed.append("batch × seqlen = \(t)") }
    if a.embeddingDim == nil || a.embeddingSplit == .fixHeads, a.heads.count == 1 { fixed.append("\(a.heads[0]) heads") }
    if a.embeddingDim == nil || a.embeddingSplit == .fixHeadDim, a.headDim.count == 1 { fixed.append("head dim \(a.headDim[0])") }
    if a.causal.count == 1 { fixed.append(a.causal[0] ? "causal" : "non-causal") }
    if a.dtype.count == 1 { fixed.append(a.dtype[0].shortName) }
    let title = "Sweep over \(x.column) (\(fixed.joined(separator: ", "))): \(cases.count) configurations"
    return [Experiment(name: "sweep", title: title, xAxis: x, yAxis: y, axes: a)]
  }

  static func parseList<T>(_ text: String, _ name: String, _ parse: (String) -> T?) throws -> [T] {
    let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    guard !parts.isEmpty else { throw AttentionError.invalidArgument(argument: name, value: text, expected: "a comma-separated list") }
    return try parts.map { p in
      guard let v = parse(p) else {
        throw AttentionError.invalidArgument(argument: name, value: p, expected: expectation(name))
      }
      return v
    }
  }

  static func expectation(_ name: String) -> String {
    switch name {
    case "--dtype": "fp32, fp16 or bf16"
    case "--pass": "forward, backward or forward+backward"
    case "--impl": "flash or standard (PyTorch rows come with --with-pytorch)"
    default: "positive integers, comma-separated"
    }
  }

  static func parseCausal(_ text: String) throws -> [Bool] {
    switch text.lowercased() {
    case "both", "all": return [false, true]
    case "yes", "true", "causal", "1": return [true]
    case "no", "false", "none", "0": return [false]
    default: throw AttentionError.invalidArgument(argument: "--causal", value: text, expected: "no, yes or both")
    }
  }

  static func timestamp() -> String {
    let f = DateFormatter()
    f.dateFormat = "yyyyMMdd-HHmmss"
    f.timeZone = TimeZone(identifier: "UTC")
    return f.string(from: Date())
  }

  static func commandLine() -> String {
    (["flash-attn"] + CommandLine.arguments.dropFirst()).map { a in
      a.contains(where: { $0 == " " || $0 == "\"" }) ? "'\(a)'" : a
    }.joined(separator: " ")
  }
}

/// `flash-attn bench compare A/results.json B/results.json`.
struct BenchCompareCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "compare",
    abstract: "Print the time ratio B/A for every configuration found in both result files.")

  @Argument(help: ArgumentHelp("Baseline results.json (or its folder).", valueName: "A"))
  var a: String
  @Argument(help: ArgumentHelp("Results to compare with A.", valueName: "B"))
  var b: String

  func run() throws {
    let ra = try BenchResults.load(path: Self.resolve(a))
    let rb = try BenchResults.load(path: Self.resolve(b))
    let rows = BenchCompare.rows(ra, rb)
    guard !rows.isEmpty else {
      throw AttentionError.invalidArgument(
        argument: "B", value: b, expected: "results sharing at least one configuration with A (none matched)")
    }
    print(BenchCompare.table(ra, rb).text)
    if let g = BenchCompare.geometricMeanRatio(rows) {
      let verdict = abs(g - 1) < 0.005 ? "B as fast as A" : String(format: "B %.2f× %@", g < 1 ? 1 / g : g, g < 1 ? "faster" : "slower")
      print(String(format: "\n%d matching rows; geometric mean B/A time %.3f (%@)", rows.count, g, verdict))
    }
  }

  static func resolve(_ path: String) -> String {
    var isDir: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
      return (path as NSString).appendingPathComponent("results.json")
    }
    return path
  }
}

/// The live table on standard output: one line per row as soon as it is measured.
final class LiveTable {
  let widths = [20, 40, 10, 21, 9, 10, 8, 11]
  func line(_ cells: [String]) -> String {
    zip(cells, widths).enumerated().map { i, cw in
      let (c, w) = cw
      let pad = String(repeating: " ", count: max(0, w - c.count))
      return i < 2 ? c + pad : pad + c
    }.joined(separator: " ")
  }
  func printHeader() {
    Swift.print(line(["implementation", "configuration", "median ms", "min–max ms", "TFLOP/s", "peak MiB", "max err", "status"]))
    fflush(nil)  // all streams: lines appear as they are measured, even through a pipe
  }
  func print(_ r: BenchRecord) {
    let config = r.benchCase?.description ?? "?"
    Swift.print(line([
      r.implementation, config, BenchFormat.ms(r.medianMs),
      r.status == .ok ? "\(BenchFormat.ms(r.minMs))–\(BenchFormat.ms(r.maxMs))" : "–",
      BenchFormat.tflops(r.tflops), BenchFormat.mib(r.peakMemoryBytes), BenchFormat.error(r.maxError), r.status.rawValue,
    ]))
    fflush(nil)  // all streams: lines appear as they are measured, even through a pipe
  }
}

/// A progress line on standard error, redrawn in place only when standard error is a
/// terminal (and `--no-progress` is not given); plain notes go through it so they do not
/// tangle with the line.
final class ProgressLine {
  let live: Bool
  let enabled: Bool
  var current = ""
  init(enabled: Bool) {
    self.enabled = enabled
    live = enabled && isatty(STDERR_FILENO) != 0
  }
  func update(_ text: String) {
    guard live else { return }
    current = text
    emit("\r\u{1B}[K" + text)
  }
  func clear() {
    guard live, !current.isEmpty else { return }
    emit("\r\u{1B}[K")
    current = ""
  }
  /// Runs `body` (which prints to stdout) with the progress line lifted out of the way.
  func around(_ body: () -> Void) {
    if live && !current.isEmpty { emit("\r\u{1B}[K") }
    body()
    if live && !current.isEmpty { emit(current) }
  }
  func note(_ text: String) {
    around { emit(text + "\n") }
  }
  private func emit(_ s: String) {
    var bytes = Array(s.utf8)
    _ = bytes.withUnsafeMutableBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
  }
}
