# A missing closing brace and a stray token: hcl's own syntax errors.
container "web" {
  image = "x"
  command = ["a" "b"]
}
