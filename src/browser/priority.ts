/** The nice value of a browser's scheduling group (the server's group is at 0): about a tenth of the server's weight each. */
export const BROWSER_NICE = 10;

/** Where a browser that takes more than its share of a busy machine goes (cpu-governor.ts): weight 15 against 110. */
export const HOG_NICE = 19;
