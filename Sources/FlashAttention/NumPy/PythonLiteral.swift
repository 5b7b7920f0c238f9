/// The subset of Python literal syntax that `.npy` headers are written in.
///
/// numpy writes its header with `repr()` of a dict and reads it back with
/// `ast.literal_eval`, so a header from any numpy version (or from another writer) may use
/// single or double quotes, trailing commas, extra spaces, and — from Python 2 era files —
/// integers with an `L` suffix. We parse exactly that grammar rather than matching the one
/// string layout numpy happens to produce today.
enum PythonLiteral: Equatable {
  case string(String)
  case integer(Int)
  case boolean(Bool)
  case none
  case tuple([PythonLiteral])
  case list([PythonLiteral])
  case dictionary([(key: PythonLiteral, value: PythonLiteral)])

  static func == (a: PythonLiteral, b: PythonLiteral) -> Bool {
    switch (a, b) {
    case let (.string(x), .string(y)): return x == y
    case let (.integer(x), .integer(y)): return x == y
    case let (.boolean(x), .boolean(y)): return x == y
    case (.none, .none): return true
    case let (.tuple(x), .tuple(y)), let (.list(x), .list(y)): return x == y
    case let (.dictionary(x), .dictionary(y)):
      return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    default: return false
    }
  }

  /// Parses one literal filling all of `text` (surrounding whitespace allowed).
  /// Throws a short human-readable reason on malformed input.
  static func parse(_ text: String) throws(PythonLiteralError) -> PythonLiteral {
    var parser = Parser(scalars: Array(text.unicodeScalars))
    let value = try parser.parseValue(depth: 0)
    parser.skipWhitespace()
    guard parser.atEnd else { throw parser.error("unexpected text after the literal") }
    return value
  }
}

/// Why a header's literal could not be parsed.
struct PythonLiteralError: Error, Equatable {
  var reason: String
}

private struct Parser {
  let scalars: [Unicode.Scalar]
  var position = 0

  init(scalars: [Unicode.Scalar]) { self.scalars = scalars }

  var atEnd: Bool { position >= scalars.count }
  var current: Unicode.Scalar? { atEnd ? nil : scalars[position] }

  func error(_ what: String) -> PythonLiteralError {
    PythonLiteralError(reason: "\(what) at character \(position)")
  }

  mutating func skipWhitespace() {
    while let c = current, c == " " || c == "\t" || c == "\n" || c == "\r" { position += 1 }
  }

  // Nesting is bounded so that a hostile header cannot overflow the stack.
  mutating func parseValue(depth: Int) throws(PythonLiteralError) -> PythonLiteral {
    guard depth < 32 else { throw error("literal nested too deeply") }
    skipWhitespace()
    guard let c = current else { throw error("unexpected end of header") }
    switch c {
    case "{": return try parseDictionary(depth: depth)
    case "(": return try parseSequence(close: ")", depth: depth)
    case "[": return try parseSequence(close: "]", depth: depth)
    case "'", "\"": return .string(try parseString())
    case "0"..."9", "-", "+": return .integer(try parseInteger())
    default:
      let word = parseWord()
      switch word {
      case "True": return .boolean(true)
      case "False": return .boolean(false)
      case "None": return .none
      case "": throw error("unexpected character '\(c)'")
      default: throw error("unexpected name '\(word)'")
      }
    }
  }

  mutating func parseWord() -> String {
    var word = ""
    while let c = current, c.properties.isAlphabetic || c == "_" {
      word.unicodeScalars.append(c)
      position += 1
    }
    return word
  }

  mutating func parseString() throws(PythonLiteralError) -> String {
    let quote = scalars[position]
    position += 1
    var result = ""
    while let c = current {
      position += 1
      if c == quote { return result }
      if c == "\\" {
        // Only the escapes a dtype or key name could plausibly contain.
        guard let next = current else { break }
        position += 1
        switch next {
        case "n": result.unicodeScalars.append("\n")
        case "t": result.unicodeScalars.append("\t")
        default: result.unicodeScalars.append(next)
        }
      } else {
        result.unicodeScalars.append(c)
      }
    }
    throw error("unterminated string")
  }

  mutating func parseInteger() throws(PythonLiteralError) -> Int {
    var negative = false
    if current == "-" || current == "+" {
      negative = current == "-"
      position += 1
    }
    var value = 0
    var digits = 0
    while let c = current, ("0"..."9").contains(c) {
      let digit = Int(c.value - 48)
      let (times10, o1) = value.multipliedReportingOverflow(by: 10)
      let (sum, o2) = times10.addingReportingOverflow(digit)
      guard !o1, !o2 else { throw error("integer too large") }
      value = sum
      digits += 1
      position += 1
    }
    guard digits > 0 else { throw error("expected digits") }
    if current == "L" || current == "l" { position += 1 }  // Python 2 long literal
    if let c = current, c.properties.isAlphabetic || c == "." {
      throw error("expected an integer")
    }
    return negative ? -value : value
  }

  mutating func parseSequence(close: Unicode.Scalar, depth: Int) throws(PythonLiteralError) -> PythonLiteral {
    position += 1  // opening bracket
    var items: [PythonLiteral] = []
    var sawComma = false
    while true {
      skipWhitespace()
      guard let c = current else { throw error("missing '\(close)'") }
      if c == close {
        position += 1
        break
      }
      items.append(try parseValue(depth: depth + 1))
      skipWhitespace()
      if current == "," {
        position += 1
        sawComma = true
      } else if current != close {
        throw error("expected ',' or '\(close)'")
      }
    }
    if close == ")" {
      // `(5)` is the integer 5 in Python, `(5,)` a tuple of one.
      if items.count == 1 && !sawComma { return items[0] }
      return .tuple(items)
    }
    return .list(items)
  }

  mutating func parseDictionary(depth: Int) throws(PythonLiteralError) -> PythonLiteral {
    position += 1
    var entries: [(key: PythonLiteral, value: PythonLiteral)] = []
    while true {
      skipWhitespace()
      guard let c = current else { throw error("missing '}'") }
      if c == "}" {
        position += 1
        return .dictionary(entries)
      }
      let key = try parseValue(depth: depth + 1)
      skipWhitespace()
      guard current == ":" else { throw error("expected ':'") }
      position += 1
      let value = try parseValue(depth: depth + 1)
      entries.append((key, value))
      skipWhitespace()
      if current == "," {
        position += 1
      } else if current != "}" {
        throw error("expected ',' or '}'")
      }
    }
  }
}
