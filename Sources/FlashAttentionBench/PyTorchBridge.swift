import Foundation
import FlashAttention

/// Runs `scripts/bench_pytorch.py` in a subprocess on the same configurations and reads
/// its records back (same schema as ours), so PyTorch rows join the tables and charts.
public enum PyTorchBridge {
  /// What the script returns.
  public struct Output: Decodable, Sendable {
    public var torch: String?
    public var device: String?
    public var notes: [String]?
    public var records: [BenchRecord]
  }

  /// The script: `explicit`, else `scripts/bench_pytorch.py` under the current folder or
  /// next to the executable's checkout (`.build/<config>/flash-attn` → the package root).
  public static func findScript(explicit: String?) -> String? {
    let fm = FileManager.default
    if let explicit { return fm.fileExists(atPath: explicit) ? explicit : nil }
    var candidates = [fm.currentDirectoryPath + "/scripts/bench_pytorch.py"]
    let exe = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath()
    var dir = exe.deletingLastPathComponent()
    for _ in 0..<5 {
      candidates.append(dir.appendingPathComponent("scripts/bench_pytorch.py").path)
      dir = dir.deletingLastPathComponent()
    }
    return candidates.first { fm.fileExists(atPath: $0) }
  }

  /// Runs `python script args…`, stderr passed through; returns (exit status, stdout).
  static func runProcess(_ python: String, _ args: [String]) -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [python] + args
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.standardError
    do { try p.run() } catch { return (127, "") }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
  }

  /// torch's version when `python` can import it; nil otherwise.
  public static func torchVersion(python: String, script: String) -> String? {
    let (status, out) = runProcess(python, [script, "--check"])
    return status == 0 ? out.trimmingCharacters(in: .whitespacesAndNewlines) : nil
  }

  /// Runs the PyTorch implementations on `items` (the configurations our run measured).
  /// Never throws: a missing torch or a failed script becomes a note and no rows.
  public static func run(
    items: [BenchPlan.Item], implementations: [Implementation], gpu: Bool, settings: MeasureSettings,
    maxSeconds: Double?, python: String, script: String
  ) -> (records: [BenchRecord], notes: [String]) {
    let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("flash-attn-bench-\(getpid())")
    try? FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: tmp) }
    let configURL = tmp.appendingPathComponent("config.json")
    let outURL = tmp.appendingPathComponent("records.json")
    var config: [String: Any] = [
      "device": gpu ? "cuda" : "cpu", "warmup": settings.warmup, "repeats": settings.repeats,
      "seed": Int(truncatingIfNeeded: settings.seed),
      "implementations": implementations.map(\.name),
      "cases": items.map { item -> [String: Any] in
        let c = item.benchCase
        return [
          "batch": c.batch, "heads": c.heads, "kvHeads": c.kvHeads, "seqlenQ": c.seqlenQ, "seqlenK": c.seqlenK,
          "headDim": c.headDim, "causal": c.causal, "dtype": c.dtype.shortName, "pass": c.pass.rawValue,
          "experiments": item.experiments,
        ]
      },
    ]
    if let maxSeconds { config["maxSeconds"] = maxSeconds }
    do {
      let data = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
      try data.write(to: configURL)
    } catch {
      return ([], ["PyTorch rows skipped: cannot write the configuration file (\(error.localizedDescription))."])
    }
    let (status, _) = runProcess(python, [script, "--config", configURL.path, "--output", outURL.path])
    if status == 3 {
      return ([], ["PyTorch rows skipped: `\(python)` cannot import torch."])
    }
    guard status == 0, let data = try? Data(contentsOf: outURL) else {
      return ([], ["PyTorch rows skipped: \(script) exited with status \(status)."])
    }
    let decoder = JSONDecoder()
    decoder.nonConformingFloatDecodingStrategy = .convertFromString(
      positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    do {
      let out = try decoder.decode(Output.self, from: data)
      var notes = (out.notes ?? []).map { "PyTorch: \($0)" }
      notes.insert("PyTorch \(out.torch ?? "?") rows (\(implementations.map(\.name).joined(separator: ", "))) "
        + "from \(script) on \(out.device ?? "?").", at: 0)
      return (out.records, notes)
    } catch {
      return ([], ["PyTorch rows skipped: cannot read the script's output: \(error)."])
    }
  }
}
