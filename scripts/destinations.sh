# Sourced by the scripts: every destination, found by looking. ClientSuccess is the repository
# root; each other is a folder of destinations/. Prints "name folder tests-folder" lines, where
# the tests folder holds pyairbyte.py and test-secrets.
destinations() {
  echo "clientsuccess . integration_tests"
  for folder in destinations/*/; do
    folder="${folder%/}"
    echo "${folder#destinations/} $folder $folder"
  done
}
