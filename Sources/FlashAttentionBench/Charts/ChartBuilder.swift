import FlashAttention

/// One chart of a report.
public struct RenderedChart: Sendable {
  /// File name under the output folder, e.g. `seqlen-time.svg`.
  public var fileName: String
  public var title: String
  public var experiment: String
  public var svg: String
}

/// Turns an experiment's records into the seed 002 chart set: time and TFLOP/s against the
/// swept axis, flash speedup bars, peak memory against seqlen, forward vs backward bars,
/// and the batch × seqlen heatmap.
public enum ChartBuilder {
  /// Records of `experiment`, only `ok` ones unless `all`.
  static func records(_ records: [BenchRecord], of e: Experiment) -> [(BenchRecord, BenchCase)] {
    records.compactMap { r in
      guard r.experiments.contains(e.name), let c = r.benchCase else { return nil }
      // A configuration shared with another experiment may carry implementations this one
      // did not ask for (PyTorch rows count as baselines, shown where standard is).
      if let wanted = e.implementations {
        let impl = Implementation(r.implementation)
        guard wanted.contains(impl) || (impl.isPyTorch && wanted.contains(.standard)) else { return nil }
      }
      return (r, c)
    }
  }

  /// Axes other than x (and y) whose value differs between the experiment's rows: they
  /// go into series names so no two configurations share a line.
  static func varyingAxes(_ rows: [(BenchRecord, BenchCase)], excluding: Set<SweepAxis>) -> [SweepAxis] {
    let candidates: [SweepAxis] = [.causal, .pass, .dtype, .batch, .seqlen, .heads, .kvHeads, .headDim]
    return candidates.filter { axis in
      !excluding.contains(axis) && Set(rows.map { axis.text($0.1) }).count > 1
        && !(axis == .headDim && excluding.contains(.embeddingDim))
        && !(axis == .heads && excluding.contains(.embeddingDim))
    }
  }

  static func seriesName(_ r: BenchRecord, _ c: BenchCase, _ axes: [SweepAxis]) -> String {
    ([r.implementation] + axes.map { axisTag($0, c) }).joined(separator: ", ")
  }

  static func axisTag(_ axis: SweepAxis, _ c: BenchCase) -> String {
    switch axis {
    case .causal, .pass, .dtype: axis.text(c)
    case .batch: "B\(c.batch)"
    case .seqlen: "N\(axis.text(c))"
    case .heads: "H\(c.heads)"
    case .kvHeads: "KV\(c.kvHeads)"
    case .headDim: "D\(c.headDim)"
    case .embeddingDim: "emb \(c.embeddingDim)"
    }
  }

  public static func charts(for e: Experiment, records all: [BenchRecord]) -> [RenderedChart] {
    let rows = records(all, of: e)
    let ok = rows.filter { $0.0.status == .ok }
    guard !ok.isEmpty else { return [] }
    var out: [RenderedChart] = []
    var exclude: Set<SweepAxis> = [e.xAxis]
    if let y = e.yAxis { exclude.insert(y) }
    let others = varyingAxes(ok, excluding: exclude)
    let passText = Set(ok.map { $0.1.pass }).count == 1 ? ok[0].1.pass.rawValue.capitalizedFirst + " time" : "Time"

    func add(_ kind: String, _ title: String, _ svg: String) {
      out.append(RenderedChart(fileName: "\(e.name)-\(kind).svg", title: title, experiment: e.name, svg: svg))
    }

    func metricChart(_ kind: String, _ title: String, _ yLabel: String, _ value: (BenchRecord) -> Double?) {
      if e.xAxis.isNumeric {
        var series: [String: [(x: Double, y: Double)]] = [:]
        var order: [String] = []
        for (r, c) in ok {
          guard let v = value(r) else { continue }
          let name = seriesName(r, c, others + (e.yAxis.map { [$0] } ?? []))
          if series[name] == nil { order.append(name) }
          series[name, default: []].append((e.xAxis.number(c), v))
        }
        let chart = LineChart(
          title: title, xLabel: e.xAxis.label, yLabel: yLabel, series: styled(order, series))
        add(kind, title, chart.render())
      } else {
        let cats = orderedValues(ok.map { $0.1 }, e.xAxis)
        var series: [String: [Double?]] = [:]
        var order: [String] = []
        for (r, c) in ok {
          let name = seriesName(r, c, others)
          if series[name] == nil {
            order.append(name)
            series[name] = Array(repeating: nil, count: cats.count)
          }
          if let i = cats.firstIndex(of: e.xAxis.text(c)) { series[name]![i] = value(r) }
        }
        let chart = BarChart(
          title: title, xLabel: e.xAxis.label, yLabel: yLabel, categories: cats,
          series: order.map { ($0, series[$0]!) })
        add(kind, title, chart.render())
      }
    }

    for kind in e.charts {
      switch kind {
      case .time:
        metricChart("time", "\(passText) vs \(e.xAxis.column) — \(e.title)", "median time (ms)") { $0.medianMs }
      case .tflops:
        metricChart("tflops", "Throughput vs \(e.xAxis.column) — \(e.title)", "TFLOP/s") { $0.tflops }
      case .memory:
        metricChart("memory", "Peak extra memory vs \(e.xAxis.column) — \(e.title)", "peak memory (MiB)") {
          $0.peakMemoryBytes.map { Double($0) / 1_048_576 }
        }
      case .speedup:
        if let chart = speedupChart(e, ok, others) { add("speedup", chart.title, chart.render()) }
      case .passes:
        if let chart = passChart(e, ok) { add("passes", chart.title, chart.render()) }
      case .heatmap:
        if let chart = heatmap(e, ok) { add("heatmap", chart.title, chart.render()) }
      }
    }
    return out
  }

  /// Line styles: each implementation keeps its colour and the other varying options get
  /// a dash pattern each (flash solid blue, flash causal dashed blue, …) when there are few
  /// enough of them; otherwise one colour per line.
  static func styled(_ order: [String], _ points: [String: [(x: Double, y: Double)]]) -> [ChartSeries] {
    let dashes: [String?] = [nil, "7,4", "2,3", "10,3,2,3"]
    func split(_ name: String) -> (String, String) {
      guard let r = name.range(of: ", ") else { return (name, "") }
      return (String(name[..<r.lowerBound]), String(name[r.upperBound...]))
    }
    var variants: [String] = []
    for name in order where !variants.contains(split(name).1) { variants.append(split(name).1) }
    let impls = Set(order.map { split($0).0 })
    let byImplementation = variants.count <= dashes.count && impls.allSatisfy { ChartPalette.fixed[$0] != nil }
    return order.enumerated().map { i, name in
      let (impl, variant) = split(name)
      guard byImplementation else { return ChartSeries(name: name, points: points[name]!, color: ChartPalette.color(for: name, index: i)) }
      return ChartSeries(
        name: name, points: points[name]!, color: ChartPalette.fixed[impl],
        dash: dashes[variants.firstIndex(of: variant) ?? 0])
    }
  }

  /// Distinct values of an axis in first-seen order (numeric axes sorted).
  static func orderedValues(_ cases: [BenchCase], _ axis: SweepAxis) -> [String] {
    var seen: [String] = []
    // Categorical axes sort by their index too: non-causal before causal, forward first.
    let sorted = cases.enumerated().sorted {
      axis.number($0.element) != axis.number($1.element)
        ? axis.number($0.element) < axis.number($1.element) : $0.offset < $1.offset
    }.map(\.element)
    for c in sorted where !seen.contains(axis.text(c)) { seen.append(axis.text(c)) }
    return seen
  }

  /// Configuration label without the implementation: x value plus the other varying axes.
  static func configLabel(_ c: BenchCase, _ e: Experiment, _ others: [SweepAxis]) -> String {
    ([axisTag(e.xAxis, c)] + (e.yAxis.map { [axisTag($0, c)] } ?? []) + others.map { axisTag($0, c) })
      .joined(separator: " ")
  }

  /// standard time / flash time per configuration (and over each PyTorch row).
  static func speedupChart(_ e: Experiment, _ ok: [(BenchRecord, BenchCase)], _ others: [SweepAxis]) -> BarChart? {
    var flash: [BenchCase: Double] = [:]
    var baselines: [String: [BenchCase: Double]] = [:]
    var configs: [BenchCase] = []
    for (r, c) in ok {
      guard let t = r.medianMs else { continue }
      if r.implementation == "flash" {
        flash[c] = t
        configs.append(c)
      } else {
        baselines[r.implementation, default: [:]][c] = t
      }
    }
    guard !flash.isEmpty, !baselines.isEmpty else { return nil }
    configs.sort { ($0.seqlenQ, $0.batch, $0.heads, $0.headDim) < ($1.seqlenQ, $1.batch, $1.heads, $1.headDim) }
    if e.xAxis.isNumeric { configs.sort { e.xAxis.number($0) < e.xAxis.number($1) } }
    let names = baselines.keys.sorted { Implementation($0) < Implementation($1) }
    let series = names.map { name in
      (name: "flash vs \(name)", values: configs.map { c -> Double? in
        guard let f = flash[c], let b = baselines[name]?[c], f > 0 else { return nil }
        return b / f
      })
    }
    guard series.contains(where: { $0.values.contains { $0 != nil } }) else { return nil }
    return BarChart(
      title: "Speedup of flash — \(e.title)", xLabel: "configuration (\(e.xAxis.label))",
      yLabel: "speedup (baseline time / flash time, ×)", categories: configs.map { configLabel($0, e, others) },
      series: series, referenceLine: 1, logY: false, valueFormat: { ChartScale.trim($0) + "×" })
  }

  /// Median time of each pass side by side, per configuration and implementation.
  static func passChart(_ e: Experiment, _ ok: [(BenchRecord, BenchCase)]) -> BarChart? {
    let passes = AttentionPass.allCases.filter { p in ok.contains { $0.1.pass == p } }
    guard passes.count > 1 else { return nil }
    var exclude: Set<SweepAxis> = [e.xAxis, .pass]
    if let y = e.yAxis { exclude.insert(y) }
    let others = varyingAxes(ok, excluding: exclude)
    var configs: [String] = []
    var values: [String: [String: Double]] = [:]  // series → config → ms
    var seriesOrder: [String] = []
    func order(_ c: BenchCase) -> (Double, Double) { (e.yAxis?.number(c) ?? 0, e.xAxis.number(c)) }
    let sorted = ok.sorted { order($0.1) < order($1.1) }
    let impls = Set(ok.map { $0.0.implementation })
    for (r, c) in sorted {
      guard let t = r.medianMs else { continue }
      let config = configLabel(c, e, others)
      if !configs.contains(config) { configs.append(config) }
      let name = impls.count > 1 ? "\(r.implementation) \(c.pass.rawValue)" : c.pass.rawValue
      if values[name] == nil { seriesOrder.append(name) }
      values[name, default: [:]][config] = t
    }
    return BarChart(
      title: "Forward vs backward — \(e.title)", xLabel: "configuration", yLabel: "median time (ms)",
      categories: configs, series: seriesOrder.map { n in (n, configs.map { values[n]?[$0] }) })
  }

  /// TFLOP/s of flash (else the first implementation) on the y × x grid.
  static func heatmap(_ e: Experiment, _ ok: [(BenchRecord, BenchCase)]) -> Heatmap? {
    guard let yAxis = e.yAxis else { return nil }
    let impl = ok.contains { $0.0.implementation == "flash" } ? "flash" : ok[0].0.implementation
    let rows = ok.filter { $0.0.implementation == impl }
    let xs = orderedValues(rows.map(\.1), e.xAxis)
    let ys = orderedValues(rows.map(\.1), yAxis)
    var grid = Array(repeating: [Double?](repeating: nil, count: xs.count), count: ys.count)
    for (r, c) in rows {
      guard let xi = xs.firstIndex(of: e.xAxis.text(c)), let yi = ys.firstIndex(of: yAxis.text(c)) else { continue }
      grid[yi][xi] = r.tflops
    }
    return Heatmap(
      title: "\(impl) throughput, \(yAxis.column) × \(e.xAxis.column) — \(e.title)", xLabel: e.xAxis.label,
      yLabel: yAxis.label, columns: xs, rows: ys, values: grid, unit: "TFLOP/s")
  }
}

extension String {
  var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
}
