import Foundation

/// Grouped bars: one group per category, one bar per series, value labels on the bars.
public struct BarChart {
  public var title: String
  public var xLabel: String
  public var yLabel: String
  public var categories: [String]
  /// One value per category (nil: no bar, e.g. an OOM baseline).
  public var series: [(name: String, values: [Double?])]
  /// A dashed horizontal line, e.g. at speedup 1.
  public var referenceLine: Double?
  /// Formats the label above each bar.
  public var valueFormat: (Double) -> String
  public var logY: Bool?

  public init(
    title: String, xLabel: String, yLabel: String, categories: [String], series: [(name: String, values: [Double?])],
    referenceLine: Double? = nil, logY: Bool? = nil, valueFormat: @escaping (Double) -> String = { ChartScale.trim($0) }
  ) {
    self.title = title
    self.xLabel = xLabel
    self.yLabel = yLabel
    self.categories = categories
    self.series = series
    self.referenceLine = referenceLine
    self.logY = logY
    self.valueFormat = valueFormat
  }

  public func render() -> String {
    var frame = ChartFrame()
    // Category labels wider than their group are drawn slanted, with room made below.
    let groupGuess: Double = (frame.plotRight - frame.plotLeft) / Double(max(1, categories.count))
    let longest: Int = categories.map { (c: String) -> Int in c.count }.max() ?? 0
    let labelWidth: Double = Double(longest) * 6.5
    let slanted: Bool = labelWidth > groupGuess
    if slanted {
      frame.height = 500
      let room: Double = 5.5 * Double(longest)
      frame.bottom = 62 + Swift.min(120.0, room)
    }
    var doc = SVGDocument(width: frame.width, height: frame.height)
    frame.title(&doc, title)
    var values = series.flatMap { $0.values.compactMap { $0 } }
    if let r = referenceLine { values.append(r) }
    let useLog = logY ?? LineChart.spansDecades(values, ratio: 100)
    let y = ChartScale(values: values, pixels: (frame.plotBottom, frame.plotTop), log: useLog)
    for t in y.ticks {
      let py = y.pixel(t)
      doc.line(frame.plotLeft, py, frame.plotRight, py, stroke: "#e4e4e4")
      doc.text(ChartScale.label(t), x: frame.plotLeft - 6, y: py + 4, size: 11, anchor: .end)
    }
    let groupWidth = (frame.plotRight - frame.plotLeft) / Double(max(1, categories.count))
    let barWidth = min(48, groupWidth * 0.8 / Double(max(1, series.count)))
    let base = y.pixel(useLog ? y.lower : max(0, y.lower))
    for (ci, cat) in categories.enumerated() {
      let gx = frame.plotLeft + groupWidth * Double(ci)
      let start = gx + (groupWidth - barWidth * Double(series.count)) / 2
      for (si, s) in series.enumerated() {
        guard ci < s.values.count, let v = s.values[ci], v.isFinite else { continue }
        let color = ChartPalette.color(for: s.name, index: si)
        let top = y.pixel(v)
        let x = start + barWidth * Double(si)
        doc.rect(x, min(top, base), barWidth - 2, abs(base - top), fill: color, title: "\(s.name), \(cat): \(valueFormat(v))")
        // Values above bars only where they fit; the <title> tooltip has them all.
        if barWidth >= 24 {
          doc.text(valueFormat(v), x: x + barWidth / 2 - 1, y: min(top, base) - 4, size: barWidth >= 34 ? 10 : 8, anchor: .middle)
        }
      }
      if slanted {
        doc.text(cat, x: gx + groupWidth / 2 + 4, y: frame.plotBottom + 14, size: 11, anchor: .end, rotate: -35)
      } else {
        doc.text(cat, x: gx + groupWidth / 2, y: frame.plotBottom + 18, size: 11, anchor: .middle)
      }
    }
    if let r = referenceLine {
      let py = y.pixel(r)
      doc.line(frame.plotLeft, py, frame.plotRight, py, stroke: "#555", width: 1, dash: "4,3")
    }
    doc.line(frame.plotLeft, base, frame.plotRight, base, stroke: "#444")
    doc.line(frame.plotLeft, frame.plotTop, frame.plotLeft, frame.plotBottom, stroke: "#444")
    doc.text(xLabel, x: (frame.plotLeft + frame.plotRight) / 2, y: frame.height - 18, size: 12, anchor: .middle)
    doc.text(
      yLabel + (useLog ? " (log scale)" : ""), x: 18, y: (frame.plotTop + frame.plotBottom) / 2, size: 12,
      anchor: .middle, rotate: -90)
    frame.legend(&doc, entries: series.enumerated().map { ($0.element.name, ChartPalette.color(for: $0.element.name, index: $0.offset), nil) })
    return doc.render(title: title)
  }
}

/// A grid of coloured cells (yellow = low, dark red = high) with the value in each cell
/// and a colour bar.
public struct Heatmap {
  public var title: String
  public var xLabel: String
  public var yLabel: String
  public var columns: [String]
  public var rows: [String]
  /// values[row][column]; nil cells are grey ("n/a").
  public var values: [[Double?]]
  /// The quantity and unit of the cells, for the colour bar, e.g. "TFLOP/s".
  public var unit: String

  public init(title: String, xLabel: String, yLabel: String, columns: [String], rows: [String], values: [[Double?]], unit: String) {
    self.title = title
    self.xLabel = xLabel
    self.yLabel = yLabel
    self.columns = columns
    self.rows = rows
    self.values = values
    self.unit = unit
  }

  /// Yellow (#ffffb2) → orange → dark red (#bd0026), t in [0, 1].
  static func color(_ t: Double) -> String {
    let stops: [(Double, Double, Double)] = [(255, 255, 178), (254, 178, 76), (240, 59, 32), (189, 0, 38)]
    let x = min(1, max(0, t)) * Double(stops.count - 1)
    let i = min(stops.count - 2, Int(x))
    let f = x - Double(i)
    let a = stops[i], b = stops[i + 1]
    func mix(_ p: Double, _ q: Double) -> Int { Int((p + (q - p) * f).rounded()) }
    return String(format: "#%02x%02x%02x", mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
  }

  public func render() -> String {
    let frame = ChartFrame()
    var doc = SVGDocument(width: frame.width, height: frame.height)
    frame.title(&doc, title)
    let all = values.flatMap { $0.compactMap { $0 } }.filter(\.isFinite)
    let lo = all.min() ?? 0, hi = all.max() ?? 1
    let w = (frame.plotRight - frame.plotLeft) / Double(max(1, columns.count))
    let h = (frame.plotBottom - frame.plotTop) / Double(max(1, rows.count))
    for (ri, row) in rows.enumerated() {
      // Row 0 at the top, like a table.
      let y = frame.plotTop + h * Double(ri)
      doc.text(row, x: frame.plotLeft - 6, y: y + h / 2 + 4, size: 11, anchor: .end)
      for (ci, col) in columns.enumerated() {
        let x = frame.plotLeft + w * Double(ci)
        let v = ri < values.count && ci < values[ri].count ? values[ri][ci] : nil
        if let v, v.isFinite {
          let t = hi > lo ? (v - lo) / (hi - lo) : 1
          doc.rect(x, y, w - 1, h - 1, fill: Self.color(t), title: "\(yLabel) \(row), \(xLabel) \(col): \(ChartScale.trim(v)) \(unit)")
          doc.text(ChartScale.trim(v), x: x + w / 2, y: y + h / 2 + 4, size: 11, anchor: .middle, fill: t > 0.6 ? "#fff" : "#222")
        } else {
          doc.rect(x, y, w - 1, h - 1, fill: "#dddddd")
          doc.text("n/a", x: x + w / 2, y: y + h / 2 + 4, size: 11, anchor: .middle, fill: "#666")
        }
      }
    }
    for (ci, col) in columns.enumerated() {
      doc.text(col, x: frame.plotLeft + w * (Double(ci) + 0.5), y: frame.plotBottom + 18, size: 11, anchor: .middle)
    }
    doc.text(xLabel, x: (frame.plotLeft + frame.plotRight) / 2, y: frame.height - 18, size: 12, anchor: .middle)
    doc.text(yLabel, x: 18, y: (frame.plotTop + frame.plotBottom) / 2, size: 12, anchor: .middle, rotate: -90)
    // Colour bar.
    let bx = frame.plotRight + 30
    let steps = 20
    let bh = (frame.plotBottom - frame.plotTop) / Double(steps)
    for i in 0..<steps {
      let t = 1 - Double(i) / Double(steps - 1)
      doc.rect(bx, frame.plotTop + bh * Double(i), 18, bh + 0.5, fill: Self.color(t))
    }
    doc.text(ChartScale.trim(hi), x: bx + 24, y: frame.plotTop + 10, size: 11)
    doc.text(ChartScale.trim(lo), x: bx + 24, y: frame.plotBottom, size: 11)
    doc.text(unit, x: bx + 24, y: (frame.plotTop + frame.plotBottom) / 2, size: 12)
    return doc.render(title: title)
  }
}
