import Foundation
import FlashAttention

/// Writes a run's output folder: `results.json`, `results.csv`, one SVG per chart,
/// `report.md` (charts linked) and `report.html` (charts inline).
public enum BenchReport {
  /// Files written, relative to `directory`.
  @discardableResult
  public static func write(
    results: BenchResults, experiments: [Experiment], to directory: String
  ) throws(AttentionError) -> [String] {
    let fm = FileManager.default
    do { try fm.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
      throw .file(path: directory, reason: "cannot create the output folder: \(error.localizedDescription)")
    }
    var written: [String] = []
    func put(_ name: String, _ data: Data) throws(AttentionError) {
      let path = (directory as NSString).appendingPathComponent(name)
      do { try data.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
        throw .file(path: path, reason: "cannot write: \(error.localizedDescription)")
      }
      written.append(name)
    }
    let json: Data
    do { json = try results.jsonData() } catch {
      throw .file(path: "results.json", reason: "cannot encode: \(error)")
    }
    try put("results.json", json)
    try put("results.csv", Data(results.csv().utf8))
    var sections: [(Experiment, ReportTable?, [RenderedChart])] = []
    for e in experiments {
      let charts = ChartBuilder.charts(for: e, records: results.records)
      for c in charts { try put(c.fileName, Data(c.svg.utf8)) }
      sections.append((e, ExperimentTable.table(for: e, records: results.records), charts))
    }
    try put("report.md", Data(markdown(results, sections).utf8))
    try put("report.html", Data(html(results, sections).utf8))
    return written
  }

  static func header(_ r: BenchResults) -> [(String, String)] {
    let m = r.metadata
    let counts = Dictionary(grouping: r.records, by: \.status).mapValues(\.count)
    let status = [BenchStatus.ok, .oom, .unsupported, .error].compactMap { s in counts[s].map { "\($0) \(s.rawValue)" } }
    let worst = r.records.compactMap(\.maxError).filter { !$0.isNaN }.max()
    var rows = [
      ("Date", m.date), ("Command", "`\(m.command)`"), ("Machine", m.machine), ("Device", m.device),
      ("Rows", status.joined(separator: ", ")),
    ]
    if let worst { rows.append(("Largest flash vs standard difference", BenchFormat.error(worst))) }
    return rows
  }

  static let method = """
    Times are medians of the timed runs after warm-up, measured round-robin across the \
    implementations of each configuration (GPU: CUDA events; CPU: a monotonic clock). \
    TFLOP/s counts 4·batch·heads·seqlenQ·seqlenK·headDim for the forward (only the visible \
    pairs when causal), 2.5× that for the backward and 3.5× for forward + backward. Peak \
    memory is what one pass allocates beyond its inputs. Max error is max |flash − standard| \
    on the same random inputs.
    """

  static func markdown(_ r: BenchResults, _ sections: [(Experiment, ReportTable?, [RenderedChart])]) -> String {
    var s = "# flash-attn bench report\n\n"
    for (k, v) in header(r) { s += "- **\(k)**: \(v)\n" }
    s += "\n\(method)\n\n"
    if !r.metadata.notes.isEmpty {
      s += "## Notes\n\n" + r.metadata.notes.map { "- \($0)" }.joined(separator: "\n") + "\n\n"
    }
    for (e, table, charts) in sections {
      s += "## \(e.title)\n\n"
      if let table { s += table.markdown + "\n\n" } else { s += "_No results (skipped)._\n\n" }
      for c in charts { s += "![\(c.title)](\(c.fileName))\n\n" }
    }
    s += "All rows: [results.csv](results.csv), [results.json](results.json).\n"
    return s
  }

  static func html(_ r: BenchResults, _ sections: [(Experiment, ReportTable?, [RenderedChart])]) -> String {
    let esc = SVGDocument.escape
    var s = """
      <!DOCTYPE html>
      <html lang="en"><head><meta charset="utf-8"><title>flash-attn bench report</title>
      <style>
      body { font-family: Helvetica, Arial, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
      table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
      th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
      th { background: #f3f3f3; }
      td:first-child, th:first-child { text-align: left; }
      figure { margin: 1em 0; } svg { max-width: 100%; height: auto; }
      code { background: #f5f5f5; padding: 1px 4px; }
      </style></head><body>
      <h1>flash-attn bench report</h1>
      <ul>

      """
    for (k, v) in header(r) {
      let value = v.hasPrefix("`") ? "<code>\(esc(String(v.dropFirst().dropLast())))</code>" : esc(v)
      s += "<li><b>\(esc(k))</b>: \(value)</li>\n"
    }
    s += "</ul>\n<p>\(esc(method))</p>\n"
    if !r.metadata.notes.isEmpty {
      s += "<h2>Notes</h2>\n<ul>\n" + r.metadata.notes.map { "<li>\(esc($0))</li>" }.joined(separator: "\n") + "\n</ul>\n"
    }
    for (e, table, charts) in sections {
      s += "<h2>\(esc(e.title))</h2>\n"
      s += table?.html ?? "<p><i>No results (skipped).</i></p>"
      s += "\n"
      for c in charts {
        // The SVG documents are inlined without their XML prolog (they have none).
        s += "<figure>\n\(c.svg)</figure>\n"
      }
    }
    s += "<p>All rows: <a href=\"results.csv\">results.csv</a>, <a href=\"results.json\">results.json</a>.</p>\n"
    s += "</body></html>\n"
    return s
  }
}
