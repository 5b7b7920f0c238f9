import ArgumentParser

/// The root command. Subcommands live in their own files; add yours to the list below.
@main
struct FlashAttn: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "flash-attn",
    abstract: "Exact, IO-aware attention on the CPU and NVIDIA GPUs.",
    subcommands: [
      ForwardCommand.self,
      BackwardCommand.self,
      InfoCommand.self, KernelsCommand.self, VerifyCommand.self,
      BenchCommand.self,
    ])

  /// Runs the chosen subcommand, reporting any failure as one `error: ...` line on standard
  /// error (see `CommandFailure`) instead of ArgumentParser's usage screen.
  static func main() async {
    await CommandFailure.runReportingErrors(FlashAttn.self)
  }
}
