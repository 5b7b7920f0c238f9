import Foundation

/// A minimal SVG writer: elements appended as text, attributes escaped. Produces a
/// standalone document (with `xmlns`) that browsers, Markdown viewers and XML parsers read.
public struct SVGDocument {
  public let width: Double
  public let height: Double
  private var body: [String] = []

  public init(width: Double, height: Double) {
    self.width = width
    self.height = height
  }

  public static func escape(_ s: String) -> String {
    var out = ""
    for ch in s {
      switch ch {
      case "&": out += "&amp;"
      case "<": out += "&lt;"
      case ">": out += "&gt;"
      case "\"": out += "&quot;"
      case "'": out += "&apos;"
      default: out.append(ch)
      }
    }
    return out
  }

  static func fmt(_ v: Double) -> String {
    guard v.isFinite else { return "0" }
    let r = (v * 100).rounded() / 100
    return r == r.rounded() ? String(Int(r)) : String(r)
  }

  private static func attributes(_ attrs: [(String, String)]) -> String {
    attrs.map { " \($0.0)=\"\(escape($0.1))\"" }.joined()
  }

  public mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, width: Double = 1, dash: String? = nil) {
    var a = [("x1", Self.fmt(x1)), ("y1", Self.fmt(y1)), ("x2", Self.fmt(x2)), ("y2", Self.fmt(y2)),
             ("stroke", stroke), ("stroke-width", Self.fmt(width))]
    if let dash { a.append(("stroke-dasharray", dash)) }
    body.append("<line\(Self.attributes(a))/>")
  }

  public mutating func rect(_ x: Double, _ y: Double, _ w: Double, _ h: Double, fill: String, stroke: String? = nil, title: String? = nil) {
    var a = [("x", Self.fmt(x)), ("y", Self.fmt(y)), ("width", Self.fmt(max(0, w))), ("height", Self.fmt(max(0, h))), ("fill", fill)]
    if let stroke { a.append(("stroke", stroke)) }
    if let title {
      body.append("<rect\(Self.attributes(a))><title>\(Self.escape(title))</title></rect>")
    } else {
      body.append("<rect\(Self.attributes(a))/>")
    }
  }

  public mutating func circle(_ cx: Double, _ cy: Double, r: Double, fill: String, title: String? = nil) {
    let a = [("cx", Self.fmt(cx)), ("cy", Self.fmt(cy)), ("r", Self.fmt(r)), ("fill", fill)]
    if let title {
      body.append("<circle\(Self.attributes(a))><title>\(Self.escape(title))</title></circle>")
    } else {
      body.append("<circle\(Self.attributes(a))/>")
    }
  }

  public mutating func polyline(_ points: [(Double, Double)], stroke: String, width: Double = 2, dash: String? = nil) {
    let pts = points.map { "\(Self.fmt($0.0)),\(Self.fmt($0.1))" }.joined(separator: " ")
    var a = [("points", pts), ("fill", "none"), ("stroke", stroke), ("stroke-width", Self.fmt(width)),
             ("stroke-linejoin", "round")]
    if let dash { a.append(("stroke-dasharray", dash)) }
    body.append("<polyline\(Self.attributes(a))/>")
  }

  public enum Anchor: String { case start, middle, end }

  public mutating func text(
    _ s: String, x: Double, y: Double, size: Double = 12, anchor: Anchor = .start, weight: String? = nil,
    fill: String = "#222", rotate: Double? = nil
  ) {
    var a = [("x", Self.fmt(x)), ("y", Self.fmt(y)), ("font-size", Self.fmt(size)), ("text-anchor", anchor.rawValue),
             ("fill", fill)]
    if let weight { a.append(("font-weight", weight)) }
    if let rotate { a.append(("transform", "rotate(\(Self.fmt(rotate)) \(Self.fmt(x)) \(Self.fmt(y)))")) }
    body.append("<text\(Self.attributes(a))>\(Self.escape(s))</text>")
  }

  /// The complete document. `title` becomes the SVG's `<title>` (accessible name).
  public func render(title: String) -> String {
    """
    <svg xmlns="http://www.w3.org/2000/svg" width="\(Self.fmt(width))" height="\(Self.fmt(height))" \
    viewBox="0 0 \(Self.fmt(width)) \(Self.fmt(height))" font-family="Helvetica, Arial, sans-serif">
    <title>\(Self.escape(title))</title>
    <rect x="0" y="0" width="\(Self.fmt(width))" height="\(Self.fmt(height))" fill="#ffffff"/>
    \(body.joined(separator: "\n"))
    </svg>

    """
  }
}

/// Maps data values to pixels, linearly or logarithmically, and picks readable ticks.
public struct ChartScale {
  public let log: Bool
  public let lower: Double
  public let upper: Double
  public let pixelLow: Double
  public let pixelHigh: Double

  /// A scale covering `values` (padded a little; from 0 on a linear scale of positive data).
  public init(values: [Double], pixels: (Double, Double), log: Bool, includeZero: Bool = true) {
    let v = values.filter { $0.isFinite && (!log || $0 > 0) }
    var lo = v.min() ?? (log ? 1 : 0)
    var hi = v.max() ?? (log ? 10 : 1)
    if log {
      lo = Foundation.pow(10, Foundation.floor(Foundation.log10(lo) * 4) / 4)
      hi = Foundation.pow(10, Foundation.ceil(Foundation.log10(hi) * 4) / 4)
      if hi <= lo { hi = lo * 10 }
    } else {
      if includeZero { lo = min(0, lo) }
      if hi <= lo { hi = lo + 1 }
      let step = ChartScale.niceStep((hi - lo) / 5)
      hi = Foundation.ceil(hi / step) * step
      lo = Foundation.floor(lo / step) * step
    }
    self.log = log
    lower = lo
    upper = hi
    pixelLow = pixels.0
    pixelHigh = pixels.1
  }

  public func pixel(_ v: Double) -> Double {
    let t: Double
    if log {
      t = (Foundation.log10(max(v, lower)) - Foundation.log10(lower)) / (Foundation.log10(upper) - Foundation.log10(lower))
    } else {
      t = (v - lower) / (upper - lower)
    }
    return pixelLow + t * (pixelHigh - pixelLow)
  }

  static func niceStep(_ raw: Double) -> Double {
    guard raw > 0, raw.isFinite else { return 1 }
    let p = Foundation.pow(10, Foundation.floor(Foundation.log10(raw)))
    let f = raw / p
    let nice: Double = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10
    return nice * p
  }

  /// Tick values: 1-2-5 steps on a linear scale; decades (with 2 and 5 when the range
  /// is under two decades) on a log scale.
  public var ticks: [Double] {
    if log {
      var out: [Double] = []
      let spanDecades = Foundation.log10(upper / lower)
      let mult: [Double] = spanDecades < 3 ? [1, 2, 5] : [1]
      var e = Foundation.floor(Foundation.log10(lower))
      while Foundation.pow(10, e) <= upper * 1.0001 {
        for m in mult {
          let t = m * Foundation.pow(10, e)
          if t >= lower * 0.9999 && t <= upper * 1.0001 { out.append(t) }
        }
        e += 1
      }
      return out
    }
    let step = ChartScale.niceStep((upper - lower) / 5)
    var out: [Double] = []
    var t = lower
    while t <= upper + step * 1e-6 {
      out.append(abs(t) < step * 1e-9 ? 0 : t)
      t += step
    }
    return out
  }

  /// Compact tick text: 0.5, 12, 1.5k, 2M, 1e-05.
  public static func label(_ v: Double) -> String {
    if v == 0 { return "0" }
    let a = abs(v)
    // Whole numbers below 100000 as they are: 512, 1024, 16384 read better than 1.02e+03.
    if a < 1e5, v == v.rounded() { return String(Int(v)) }
    if a >= 1e6 { return trim(v / 1e6) + "M" }
    if a >= 1e4 { return trim(v / 1e3) + "k" }
    if a >= 1 { return trim(v) }
    if a >= 0.001 { return trim(v) }
    return String(format: "%.0e", v)
  }

  public static func trim(_ v: Double) -> String {
    var s = String(format: "%.3g", v)
    if s.contains("e") { return s }
    if s.contains(".") {
      while s.hasSuffix("0") { s.removeLast() }
      if s.hasSuffix(".") { s.removeLast() }
    }
    return s
  }
}

/// Stable colours: each implementation (and series) keeps its colour across charts.
public enum ChartPalette {
  static let fixed: [String: String] = [
    "flash": "#1f77b4", "standard": "#d62728", "torch-naive": "#ff7f0e", "torch-sdpa": "#2ca02c",
    "torch-sdpa-flash": "#2ca02c", "torch-sdpa-efficient": "#9467bd", "torch-sdpa-cudnn": "#8c564b",
  ]
  static let cycle = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                      "#bcbd22", "#17becf"]

  /// The colour of series `index` named `name` (an implementation's own colour when the
  /// name is exactly an implementation).
  public static func color(for name: String, index: Int) -> String {
    fixed[name] ?? cycle[index % cycle.count]
  }
}
