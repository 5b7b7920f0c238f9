import ArgumentParser
import FlashAttention
import FlashAttentionBench

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// How `flash-attn` reports failure: ONE line, `error: <what>`, on standard error, and a
/// non-zero exit status — 64 (EX_USAGE) for a command line ArgumentParser rejects, 1 for
/// everything else. A script calling us can show that line to its user as it is.
enum CommandFailure {
  static func runReportingErrors<Root: AsyncParsableCommand>(_ root: Root.Type) async {
    do {
      var command = try root.parseAsRoot()
      if var asyncCommand = command as? AsyncParsableCommand {
        try await asyncCommand.run()
      } else {
        try command.run()
      }
    } catch let error as AttentionError {
      report(error.description, exitCode: 1)
    } catch let error as ExitCode {
      // A command that already reported what went wrong, or wants a specific status.
      exit(error.rawValue)
    } catch {
      let code = root.exitCode(for: error)
      // --help, --version and other clean exits print their screen as ArgumentParser does.
      if code == .success { root.exit(withError: error) }
      report(root.message(for: error) + " (see '\(helpCommand())')", exitCode: code.rawValue)
    }
  }

  /// `flash-attn forward --help` when the command line names a subcommand, else `flash-attn --help`.
  static func helpCommand() -> String {
    let arguments = CommandLine.arguments.dropFirst()
    let names = FlashAttn.configuration.subcommands.map { $0._commandName }
    if let first = arguments.first, names.contains(first) { return "flash-attn \(first) --help" }
    return "flash-attn --help"
  }

  static func report(_ message: String, exitCode: Int32) -> Never {
    // Keep it to one line whatever the message holds.
    let line = message.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters() }.joined(separator: " ")
    DeviceSelection.printToStandardError("error: " + line)
    exit(exitCode)
  }
}

extension Substring {
  fileprivate func trimmingCharacters() -> Substring {
    var s = self
    while let c = s.first, c.isWhitespace { s = s.dropFirst() }
    while let c = s.last, c.isWhitespace { s = s.dropLast() }
    return s
  }
}
