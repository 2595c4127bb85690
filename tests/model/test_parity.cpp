int main() { return 77; }  // placeholder: parity test comes with the networks
