import Foundation
import FlashAttention
import FlashAttentionBench
import Testing

#if canImport(FoundationXML)
  import FoundationXML
#endif

/// Parses XML with Foundation's parser; returns the root element name and whether it parsed.
final class XMLCheck: NSObject, XMLParserDelegate {
  var root: String?
  var elements = 0
  var texts: [String] = []
  func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
    if root == nil { root = name }
    elements += 1
  }
  func parser(_ parser: XMLParser, foundCharacters string: String) { texts.append(string) }

  static func parse(_ text: String) -> (ok: Bool, check: XMLCheck) {
    let check = XMLCheck()
    let parser = XMLParser(data: Data(text.utf8))
    parser.delegate = check
    return (parser.parse(), check)
  }
}

@Suite struct OutputTests {
  func sampleRecords() throws -> [BenchRecord] {
    let backend = FakeBackend(oomSeqlen: 512)
    var axes = SweepAxes()
    axes.seqlen = [128, 256, 512]
    axes.batch = [1, 2]
    axes.heads = [2]
    axes.headDim = [16]
    axes.causal = [false, true]
    axes.pass = [.forward, .backward]
    let e = Experiment(name: "grid", title: "Grid <test> & \"quotes\"", xAxis: .seqlen, yAxis: .batch, axes: axes)
    let runner = BenchRunner(backend: backend, settings: MeasureSettings(warmup: 1, repeats: 3))
    return try runner.run(BenchPlan(experiments: [e], implementations: [.flash, .standard]), cost: nil)
  }

  var gridExperiment: Experiment {
    var axes = SweepAxes()
    axes.seqlen = [128, 256, 512]
    axes.batch = [1, 2]
    axes.heads = [2]
    axes.headDim = [16]
    axes.causal = [false, true]
    axes.pass = [.forward, .backward]
    return Experiment(name: "grid", title: "Grid <test> & \"quotes\"", xAxis: .seqlen, yAxis: .batch, axes: axes)
  }

  @Test func jsonAndCSVHaveTheSchema() throws {
    let records = try sampleRecords()
    let results = BenchResults(
      metadata: BenchMetadata(command: "flash-attn bench", date: "2026-01-01", machine: "m", device: "cpu: fake", notes: ["n"]),
      records: records)
    let json = try results.jsonData()
    let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
    let rows = try #require(object["records"] as? [[String: Any]])
    #expect(rows.count == records.count)
    let required = [
      "implementation", "device", "dtype", "batch", "heads", "kvHeads", "seqlenQ", "seqlenK", "headDim", "causal", "pass",
      "medianMs", "minMs", "maxMs", "tflops", "peakMemoryBytes", "maxError", "status",
    ]
    let ok = try #require(rows.first { ($0["status"] as? String) == "ok" && ($0["implementation"] as? String) == "flash" })
    for key in required { #expect(ok[key] != nil, "missing \(key)") }
    // Every record carries every column; a row that did not run has nulls.
    for row in rows { for key in BenchRecord.columns { #expect(row.keys.contains(key), "missing \(key)") } }
    let oom = try #require(rows.first { ($0["status"] as? String) == "oom" })
    #expect(oom["medianMs"] is NSNull)
    // Round trip.
    let back = try BenchResults.decode(json, path: "results.json")
    #expect(back.records == records)
    #expect(back.metadata.notes == ["n"])

    let csv = results.csv().split(separator: "\n").map(String.init)
    #expect(csv.count == records.count + 1)
    #expect(csv[0] == BenchRecord.columns.joined(separator: ","))
    #expect(Array(BenchRecord.columns.prefix(required.count)) == required)
    for line in csv.dropFirst() {
      #expect(line.split(separator: ",", omittingEmptySubsequences: false).count >= BenchRecord.columns.count)
    }
    // A bare array of records (the PyTorch script's shape) loads too.
    let bare = try JSONEncoder().encode(records)
    #expect(try BenchResults.decode(bare, path: "x").records.count == records.count)
    #expect(throws: AttentionError.self) { try BenchResults.decode(Data("{}".utf8), path: "bad.json") }
  }

  @Test func chartsAreValidSVG() throws {
    let records = try sampleRecords()
    var e = gridExperiment
    e.charts = ChartKind.allCases
    let charts = ChartBuilder.charts(for: e, records: records)
    #expect(Set(charts.map(\.fileName)) == Set(ChartKind.allCases.map { "grid-\($0.rawValue).svg" }))
    for chart in charts {
      let (ok, check) = XMLCheck.parse(chart.svg)
      #expect(ok, "\(chart.fileName) does not parse")
      #expect(check.root == "svg")
      #expect(check.elements > 10)
    }
    let time = try #require(charts.first { $0.fileName == "grid-time.svg" })
    let texts = XMLCheck.parse(time.svg).check.texts.joined(separator: "|")
    #expect(texts.contains("median time (ms)"))  // axis label with unit
    #expect(texts.contains("flash"))  // legend
    #expect(texts.contains("sequence length (tokens)"))
  }

  @Test func lineChartUsesLogScaleAcrossDecades() {
    let wide = LineChart(title: "t", xLabel: "x", yLabel: "y", series: [
      ChartSeries(name: "a", points: [(1, 0.01), (10, 1), (100, 100)]),
    ]).render()
    #expect(wide.contains("(log scale)"))
    let narrow = LineChart(title: "t", xLabel: "x", yLabel: "y", series: [
      ChartSeries(name: "a", points: [(1, 2), (2, 3), (3, 4)]),
    ]).render()
    #expect(!narrow.contains("(log scale)"))
    #expect(XMLCheck.parse(wide).ok && XMLCheck.parse(narrow).ok)
  }

  @Test func barsAndHeatmapEscapeText() {
    let bars = BarChart(title: "a < b & c", xLabel: "x", yLabel: "y", categories: ["<1>", "2"],
                        series: [("s\"1", [1, nil]), ("s2", [2, 3])], referenceLine: 1).render()
    #expect(XMLCheck.parse(bars).ok)
    let heat = Heatmap(title: "h", xLabel: "x", yLabel: "y", columns: ["1", "2"], rows: ["a", "b"],
                       values: [[1, nil], [3, 4]], unit: "TFLOP/s").render()
    let parsed = XMLCheck.parse(heat)
    #expect(parsed.ok)
    #expect(parsed.check.texts.contains("n/a"))
  }

  @Test func reportFolderHasEveryFile() throws {
    let records = try sampleRecords()
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bench-report-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let results = BenchResults(
      metadata: BenchMetadata(command: "flash-attn bench --preset smoke", date: "d", machine: "m", device: "cpu: fake", notes: []),
      records: records)
    let files = try BenchReport.write(results: results, experiments: [gridExperiment], to: dir)
    for name in ["results.json", "results.csv", "report.md", "report.html"] { #expect(files.contains(name)) }
    let svgs = files.filter { $0.hasSuffix(".svg") }
    #expect(!svgs.isEmpty)
    for svg in svgs {
      let text = try String(contentsOfFile: dir + "/" + svg, encoding: .utf8)
      #expect(XMLCheck.parse(text).ok, "\(svg)")
    }
    let md = try String(contentsOfFile: dir + "/report.md", encoding: .utf8)
    #expect(md.contains("| batch | seqlen |"))
    #expect(md.contains("OOM"))
    for svg in svgs { #expect(md.contains("](\(svg))")) }
    let html = try String(contentsOfFile: dir + "/report.html", encoding: .utf8)
    #expect(html.components(separatedBy: "<svg ").count - 1 == svgs.count)
    #expect(html.contains("Grid &lt;test&gt; &amp;"))
  }

  @Test func tableIsShapedLikeTheSeedTables() throws {
    let records = try sampleRecords()
    let table = try #require(ExperimentTable.table(for: gridExperiment, records: records))
    #expect(Array(table.headers.prefix(2)) == ["batch", "seqlen"])
    #expect(table.headers.contains("TFLOP/s"))
    #expect(table.headers.contains("Peak memory (MiB)"))
    #expect(table.rows.count == records.count)
    #expect(table.rows.contains { $0.contains("OOM") })
  }

  @Test func compareMatchesConfigurations() throws {
    var a = try sampleRecords()
    let meta = BenchMetadata(command: "", date: "", machine: "", device: "", notes: [])
    var b = a
    for i in b.indices where b[i].status == .ok { b[i].medianMs = b[i].medianMs! / 2 }
    b.removeLast()
    a.append(BenchRecord(implementation: .flash, device: "x", benchCase: BenchCase(batch: 9, heads: 1, seqlenQ: 1, headDim: 1), status: .ok))
    let rows = BenchCompare.rows(BenchResults(metadata: meta, records: a), BenchResults(metadata: meta, records: b))
    #expect(rows.count == b.count)
    let ratios = rows.compactMap(\.ratio)
    #expect(!ratios.isEmpty)
    #expect(ratios.allSatisfy { abs($0 - 0.5) < 1e-12 })
    #expect(abs(BenchCompare.geometricMeanRatio(rows)! - 0.5) < 1e-12)
    let text = BenchCompare.table(BenchResults(metadata: meta, records: a), BenchResults(metadata: meta, records: b)).text
    #expect(text.contains("2.00×"))
  }

  @Test func anExperimentShowsOnlyItsImplementations() throws {
    var axes = SweepAxes()
    axes.seqlen = [64, 128]
    axes.heads = [2]
    axes.headDim = [16]
    let both = Experiment(name: "both", title: "both", xAxis: .seqlen, axes: axes)
    let flashOnly = Experiment(name: "flash-only", title: "flash", xAxis: .seqlen, axes: axes, implementations: [.flash])
    let runner = BenchRunner(backend: FakeBackend(), settings: MeasureSettings(warmup: 0, repeats: 1))
    let records = try runner.run(BenchPlan(experiments: [both, flashOnly], implementations: [.flash, .standard]), cost: nil)
    #expect(records.count == 4)
    #expect(records.allSatisfy { $0.experiments == ["both", "flash-only"] })
    let table = try #require(ExperimentTable.table(for: flashOnly, records: records))
    #expect(table.rows.count == 2)
    #expect(table.rows.allSatisfy { $0.contains("flash") && !$0.contains("standard") })
    #expect(try #require(ExperimentTable.table(for: both, records: records)).rows.count == 4)
  }
}
