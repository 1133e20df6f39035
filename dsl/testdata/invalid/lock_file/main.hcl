image "app" {
  pull = "registry.example.com/team/app:1.4"
}
