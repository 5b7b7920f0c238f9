import ArgumentParser

@main
struct FlashAttn: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "flash-attn", abstract: "Exact, IO-aware attention on the CPU and NVIDIA GPUs.")
}
