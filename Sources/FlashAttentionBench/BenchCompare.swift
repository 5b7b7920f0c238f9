import Foundation

/// `flash-attn bench compare A B`: the time ratio of every configuration found in both
/// result files (same implementation, dtype, shape, mask and pass).
public enum BenchCompare {
  public struct Row: Sendable {
    public var key: String
    public var a: BenchRecord
    public var b: BenchRecord
    /// B median / A median (< 1: B is faster); nil when either did not run.
    public var ratio: Double? {
      guard a.status == .ok, b.status == .ok, let x = a.medianMs, let y = b.medianMs, x > 0 else { return nil }
      return y / x
    }
  }

  public static func rows(_ a: BenchResults, _ b: BenchResults) -> [Row] {
    var byKey: [String: BenchRecord] = [:]
    for r in b.records { byKey[r.matchKey] = r }
    return a.records.compactMap { r in byKey[r.matchKey].map { Row(key: r.matchKey, a: r, b: $0) } }
  }

  public static func table(_ a: BenchResults, _ b: BenchResults, nameA: String = "A", nameB: String = "B") -> ReportTable {
    let rows = rows(a, b)
    let body = rows.map { row -> [String] in
      let c = row.a.benchCase.map(\.description) ?? row.key
      let ratio = row.ratio.map { String(format: "%.3f", $0) } ?? "–"
      let speedup = row.ratio.map { $0 > 0 ? String(format: "%.2f×", 1 / $0) : "–" } ?? "–"
      return [row.a.implementation, c, BenchFormat.statusText(row.a), BenchFormat.statusText(row.b), ratio, speedup]
    }
    return ReportTable(
      headers: ["implementation", "configuration", "\(nameA) (ms)", "\(nameB) (ms)", "\(nameB)/\(nameA) time",
                "\(nameB) speedup"],
      rows: body)
  }

  /// Geometric mean of the ratios that exist (nil when none).
  public static func geometricMeanRatio(_ rows: [Row]) -> Double? {
    let r = rows.compactMap(\.ratio).filter { $0 > 0 }
    guard !r.isEmpty else { return nil }
    return Foundation.exp(r.map { Foundation.log($0) }.reduce(0, +) / Double(r.count))
  }
}

extension ReportTable {
  /// Fixed-width text with columns padded to their widest cell (for the terminal).
  public var text: String {
    var widths = headers.map(\.count)
    for r in rows { for (i, cell) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
    func line(_ cells: [String]) -> String {
      cells.enumerated().map { i, c in
        let pad = String(repeating: " ", count: max(0, widths[i] - c.count))
        return i == 0 || i == 1 ? c + pad : pad + c
      }.joined(separator: "  ")
    }
    return ([line(headers), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")]
      + rows.map(line)).joined(separator: "\n")
  }
}
