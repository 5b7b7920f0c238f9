import Foundation
import FlashAttention

/// A plain table rendered as Markdown, HTML or fixed-width text.
public struct ReportTable: Sendable {
  public var headers: [String]
  public var rows: [[String]]

  public var markdown: String {
    var lines = ["| " + headers.joined(separator: " | ") + " |"]
    lines.append("|" + headers.map { _ in "---" }.joined(separator: "|") + "|")
    for r in rows { lines.append("| " + r.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |") }
    return lines.joined(separator: "\n")
  }

  public var html: String {
    let esc = SVGDocument.escape
    var s = "<table>\n<thead><tr>" + headers.map { "<th>\(esc($0))</th>" }.joined() + "</tr></thead>\n<tbody>\n"
    for r in rows { s += "<tr>" + r.map { "<td>\(esc($0))</td>" }.joined() + "</tr>\n" }
    return s + "</tbody>\n</table>"
  }
}

/// Number formatting shared by the tables and the live output.
public enum BenchFormat {
  public static func ms(_ v: Double?) -> String {
    guard let v else { return "–" }
    if v >= 100 { return String(format: "%.1f", v) }
    if v >= 1 { return String(format: "%.3f", v) }
    return String(format: "%.4f", v)
  }
  public static func tflops(_ v: Double?) -> String {
    guard let v else { return "–" }
    return v >= 10 ? String(format: "%.1f", v) : v >= 0.01 ? String(format: "%.3f", v) : String(format: "%.2e", v)
  }
  public static func mib(_ bytes: Int?) -> String {
    guard let bytes else { return "–" }
    return String(format: "%.2f", Double(bytes) / 1_048_576)
  }
  public static func error(_ v: Double?) -> String {
    guard let v else { return "–" }
    return v.isNaN ? "NaN" : String(format: "%.1e", v)
  }
  /// What the time column shows for a row that did not run: OOM, unsupported, error.
  public static func statusText(_ r: BenchRecord) -> String {
    switch r.status {
    case .ok: ms(r.medianMs)
    case .oom: "OOM"
    case .unsupported: "unsupported"
    case .error: "error"
    }
  }
}

/// The per-experiment tables of the report, shaped like the seed reports': the swept value
/// first, then time, throughput and peak memory per implementation.
public enum ExperimentTable {
  public static func table(for e: Experiment, records all: [BenchRecord]) -> ReportTable? {
    let rows = ChartBuilder.records(all, of: e)
    guard !rows.isEmpty else { return nil }
    var exclude: Set<SweepAxis> = [e.xAxis]
    if let y = e.yAxis { exclude.insert(y) }
    let others = ChartBuilder.varyingAxes(rows, excluding: exclude)
    let axes = (e.yAxis.map { [$0] } ?? []) + [e.xAxis] + others
    // Derived columns the seed tables show next to the swept one.
    var extra: [SweepAxis] = []
    if e.xAxis == .embeddingDim { extra = [.heads, .headDim] }
    if e.xAxis == .heads, Set(rows.map { $0.1.headDim }).count > 1 { extra = [.headDim] }
    if e.xAxis == .seqlen, Set(rows.map { $0.1.batch }).count > 1, !axes.contains(.batch) { extra = [.batch] }
    let passes = Set(rows.map { $0.1.pass })
    let timeHeader = passes.count == 1 ? "\(rows[0].1.pass.rawValue.capitalizedFirst) time (ms)" : "Time (ms)"
    let headers = (axes + extra).map(\.column) + [
      "implementation", timeHeader, "min–max (ms)", "TFLOP/s", "Peak memory (MiB)", "speedup vs standard", "max error",
    ]
    // Standard's time per configuration, for the speedup column.
    var standard: [BenchCase: Double] = [:]
    for (r, c) in rows where r.implementation == "standard" && r.status == .ok { standard[c] = r.medianMs }
    let sorted = rows.sorted { a, b in
      let ka = axes.map { $0.number(a.1) }, kb = axes.map { $0.number(b.1) }
      if ka != kb { return ka.lexicographicallyPrecedes(kb) }
      return Implementation(a.0.implementation) < Implementation(b.0.implementation)
    }
    let body = sorted.map { (r, c) -> [String] in
      var speedup = "–"
      if r.implementation != "standard", let s = standard[c], let t = r.medianMs, t > 0 {
        speedup = String(format: "%.2f×", s / t)
      }
      let range = r.status == .ok ? "\(BenchFormat.ms(r.minMs))–\(BenchFormat.ms(r.maxMs))" : (r.note ?? "")
      return (axes + extra).map { $0.text(c) } + [
        r.implementation, BenchFormat.statusText(r), range, BenchFormat.tflops(r.tflops), BenchFormat.mib(r.peakMemoryBytes),
        speedup, BenchFormat.error(r.maxError),
      ]
    }
    return ReportTable(headers: headers, rows: body)
  }
}
