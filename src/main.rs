fn main() {
    eprintln!("medaudit: the command line is being wired up");
}
