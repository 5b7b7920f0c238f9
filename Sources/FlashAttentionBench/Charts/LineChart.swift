import Foundation

/// One named line of points (x, y).
public struct ChartSeries: Sendable {
  public var name: String
  public var points: [(x: Double, y: Double)]
  public var color: String?
  /// An SVG `stroke-dasharray` (nil: solid).
  public var dash: String?
  public init(name: String, points: [(x: Double, y: Double)], color: String? = nil, dash: String? = nil) {
    self.name = name
    self.points = points
    self.color = color
    self.dash = dash
  }
}

/// Shared frame of the charts: title, plot area, legend on the right.
struct ChartFrame {
  var width = 900.0
  var height = 440.0
  var left = 78.0
  var right = 250.0  // legend column
  var top = 48.0
  var bottom = 62.0
  var plotLeft: Double { left }
  var plotRight: Double { width - right }
  var plotTop: Double { top }
  var plotBottom: Double { height - bottom }

  func legend(_ doc: inout SVGDocument, entries: [(String, String, String?)]) {
    var y = plotTop + 8
    let x = plotRight + 18
    for (name, color, dash) in entries {
      doc.line(x, y, x + 22, y, stroke: color, width: 3, dash: dash)
      // Long names are cut so the legend stays inside the picture.
      let label = name.count > 34 ? String(name.prefix(33)) + "…" : name
      doc.text(label, x: x + 28, y: y + 4, size: 11)
      y += 18
    }
  }

  /// The title, on two lines when long (split at its " — ", the experiment's name).
  func title(_ doc: inout SVGDocument, _ title: String) {
    func cut(_ s: String, _ n: Int) -> String { s.count > n ? String(s.prefix(n - 1)) + "…" : s }
    if title.count > 80, let r = title.range(of: " — ") {
      doc.text(cut(String(title[..<r.lowerBound]), 100), x: width / 2, y: 18, size: 14, anchor: .middle, weight: "bold")
      doc.text(cut(String(title[r.upperBound...]), 130), x: width / 2, y: 35, size: 11.5, anchor: .middle)
    } else {
      doc.text(cut(title, 100), x: width / 2, y: 24, size: title.count > 80 ? 13 : 15, anchor: .middle, weight: "bold")
    }
  }
}

/// A line chart with markers, log or linear axes, labelled ticks and a legend.
public struct LineChart {
  public var title: String
  public var xLabel: String
  public var yLabel: String
  public var series: [ChartSeries]
  /// `nil`: decided from the data (log when it spans more than ~1.5 decades).
  public var logX: Bool?
  public var logY: Bool?
  /// Label x ticks at the data's own values (e.g. 512, 1024, 2048) instead of round numbers.
  public var ticksAtData = true

  public init(title: String, xLabel: String, yLabel: String, series: [ChartSeries], logX: Bool? = nil, logY: Bool? = nil) {
    self.title = title
    self.xLabel = xLabel
    self.yLabel = yLabel
    self.series = series
    self.logX = logX
    self.logY = logY
  }

  /// Log scale when the positive values span more than `ratio`.
  static func spansDecades(_ values: [Double], ratio: Double = 30) -> Bool {
    let pos = values.filter { $0 > 0 && $0.isFinite }
    guard let lo = pos.min(), let hi = pos.max() else { return false }
    return hi / lo > ratio
  }

  public func render() -> String {
    let frame = ChartFrame()
    var doc = SVGDocument(width: frame.width, height: frame.height)
    frame.title(&doc, title)
    let xs = series.flatMap { $0.points.map(\.x) }
    let ys = series.flatMap { $0.points.map(\.y) }
    let useLogX = logX ?? Self.spansDecades(xs, ratio: 8)
    let useLogY = logY ?? Self.spansDecades(ys)
    let xScale = ChartScale(
      values: xs, pixels: (frame.plotLeft + 12, frame.plotRight - 12), log: useLogX, includeZero: false)
    let yScale = ChartScale(values: ys, pixels: (frame.plotBottom, frame.plotTop), log: useLogY)
    let xFixed = ticksAtData && Set(xs).count <= 12 && Set(xs).count >= 2
    let xTicks = xFixed ? Array(Set(xs)).sorted() : xScale.ticks
    // Ticks at the data's own values (512, 1024, …) need the points placed on them exactly.
    let xMap: ExactScale? =
      xFixed ? ExactScale(values: xs, pixels: (frame.plotLeft + 24, frame.plotRight - 24), log: useLogX) : nil
    let xs2 = xScale

    // Grid and axes.
    for t in yScale.ticks {
      let y = yScale.pixel(t)
      doc.line(frame.plotLeft, y, frame.plotRight, y, stroke: "#e4e4e4")
      doc.text(ChartScale.label(t), x: frame.plotLeft - 6, y: y + 4, size: 11, anchor: .end)
    }
    for t in xTicks {
      let x = xMap?.pixel(t) ?? xs2.pixel(t)
      doc.line(x, frame.plotBottom, x, frame.plotBottom + 5, stroke: "#444")
      doc.text(ChartScale.label(t), x: x, y: frame.plotBottom + 18, size: 11, anchor: .middle)
    }
    doc.line(frame.plotLeft, frame.plotBottom, frame.plotRight, frame.plotBottom, stroke: "#444")
    doc.line(frame.plotLeft, frame.plotTop, frame.plotLeft, frame.plotBottom, stroke: "#444")
    doc.text(
      xLabel + (useLogX ? " (log scale)" : ""), x: (frame.plotLeft + frame.plotRight) / 2,
      y: frame.height - 18, size: 12, anchor: .middle)
    doc.text(
      yLabel + (useLogY ? " (log scale)" : ""), x: 18, y: (frame.plotTop + frame.plotBottom) / 2, size: 12,
      anchor: .middle, rotate: -90)

    var legend: [(String, String, String?)] = []
    for (i, s) in series.enumerated() {
      let color = s.color ?? ChartPalette.color(for: s.name, index: i)
      let pts = s.points.filter { $0.y.isFinite && (!useLogY || $0.y > 0) }.sorted { $0.x < $1.x }
        .map { (xMap?.pixel($0.x) ?? xs2.pixel($0.x), yScale.pixel($0.y)) }
      if pts.count > 1 { doc.polyline(pts, stroke: color, width: 2, dash: s.dash) }
      for (p, raw) in zip(pts, s.points.filter { $0.y.isFinite && (!useLogY || $0.y > 0) }.sorted { $0.x < $1.x }) {
        doc.circle(p.0, p.1, r: 3.5, fill: color, title: "\(s.name): \(ChartScale.label(raw.x)) → \(ChartScale.trim(raw.y))")
      }
      legend.append((s.name, color, s.dash))
    }
    frame.legend(&doc, entries: legend)
    return doc.render(title: title)
  }
}

/// Places the data's own x values exactly (log or linear) across the plot width.
struct ExactScale {
  let lo: Double
  let hi: Double
  let log: Bool
  let pixels: (Double, Double)
  init(values: [Double], pixels: (Double, Double), log: Bool) {
    let v = values.filter { $0.isFinite && (!log || $0 > 0) }
    lo = v.min() ?? 0
    hi = v.max() ?? 1
    self.log = log
    self.pixels = pixels
  }
  func pixel(_ v: Double) -> Double {
    guard hi > lo else { return (pixels.0 + pixels.1) / 2 }
    let t = log ? (Foundation.log(v) - Foundation.log(lo)) / (Foundation.log(hi) - Foundation.log(lo)) : (v - lo) / (hi - lo)
    return pixels.0 + t * (pixels.1 - pixels.0)
  }
}
